//! tests/apps/flask_app.py under rustcorn (needs the test venv's Flask).

use crate::apps_common::check_every_feature;
use crate::client::get;
use crate::harness::{require_venv, serve, Server};

#[test]
fn flask_app_serves_every_feature() {
    require_venv();
    let server = serve("flask_app:app", &["--workers=2"]);
    check_every_feature(&server, "Hello, Ada!");
}

#[test]
fn flask_example_from_examples_dir_serves() {
    require_venv();
    let server = Server::start(&["-b", "127.0.0.1:0", "--chdir", "examples", "flask_app:app"]);
    let r = get(server.port(), "/?name=you");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, you!\n"));
}
