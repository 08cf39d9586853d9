from django.shortcuts import render

ROWS = [{"id": i, "name": f"row <{i}>", "price": i * 1.25} for i in range(20)]


def page(request):
    return render(request, "page.html", {"title": "rustcorn bench", "rows": ROWS})
