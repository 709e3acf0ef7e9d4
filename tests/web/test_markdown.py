from projects.web.templatetags.markdown_safe import render_markdown


def test_markdown_is_rendered():
    html = render_markdown("# Title\n\n1. **bold** and [a link](https://example.com)\n")
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html
    assert 'href="https://example.com"' in html and 'rel="noopener noreferrer nofollow"' in html


def test_scripts_handlers_and_javascript_links_are_removed():
    html = render_markdown(
        "<script>alert(1)</script>\n\n[x](javascript:alert(1)) <a href='JaVaScRiPt:alert(1)'>y</a>"
        " <img src=x onerror=alert(1)> <iframe src=//evil></iframe> [d](data:text/html,hi)"
        ' <a href="vbscript:x">v</a> <p style="background:url(x)" onclick="x">p</p>'
    )
    lowered = html.lower()
    for bad in ("<script", "javascript:", "onerror", "<iframe", "data:", "vbscript", "onclick", "style="):
        assert bad not in lowered, bad
