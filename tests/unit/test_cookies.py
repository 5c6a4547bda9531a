import pytest

from controller.cookies import APP_ICMP, DIR_REVERSE, Cookie, CookieError


def test_round_trip_and_magic():
    c = Cookie(tenant=513, app=7, direction=DIR_REVERSE)
    v = c.encode()
    assert v >> 56 == 0x6E
    assert Cookie.decode(v) == c
    assert Cookie.decode(Cookie(1, APP_ICMP).encode()).app == APP_ICMP


@pytest.mark.parametrize("kwargs,field", [({"tenant": 70000}, "tenant"), ({"app": 256}, "app"),
                                         ({"direction": 3}, "direction")])
def test_out_of_range_fields(kwargs, field):
    with pytest.raises(CookieError, match=field):
        Cookie(**kwargs)


def test_foreign_cookie_rejected():
    with pytest.raises(CookieError, match="not a netshadow cookie"):
        Cookie.decode(0x1234)
