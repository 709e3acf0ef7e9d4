import pytest

from projects.core.netguard import OutboundURLRefused, check_outbound_url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/predict",
        "http://localhost/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://10.0.0.5/",
        "http://192.168.1.1/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "http://user:pw@example.com/",
        "http:///nohost",
    ],
)
def test_internal_and_odd_urls_are_refused(url):
    with pytest.raises(OutboundURLRefused):
        check_outbound_url(url)


def test_allow_list_lets_an_admin_reach_a_local_model_server(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    assert check_outbound_url("http://127.0.0.1:9090/predict") == ["127.0.0.1"]
