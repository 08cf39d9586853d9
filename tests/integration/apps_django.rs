//! tests/apps/djangoproj under rustcorn (needs the test venv's Django).

use crate::apps_common::check_every_feature;
use crate::client::get;
use crate::harness::{require_venv, serve};

const DJANGO: &str = "djangoproj.wsgi:application";

#[test]
fn django_project_serves_every_feature() {
    require_venv();
    let server = serve(DJANGO, &["--workers=2"]);
    check_every_feature(&server, "Hello, Ada from a Django template!\n");
}

#[test]
fn django_template_autoescapes_and_unknown_urls_get_404() {
    require_venv();
    let server = serve(DJANGO, &[]);
    let r = get(server.port(), "/?name=%3Cb%3E");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Hello, &lt;b&gt; from a Django template!\n")
    );
    assert_eq!(get(server.port(), "/no/such/page").status, 404);
}
