"""keyadmin's views: small functions, one per action (see `signin` and `keys`)."""

from keyadmin.views.keys import create_key, delete_key, disable_key, enable_key, key_detail, keys
from keyadmin.views.signin import appservices_signin, appservices_signout, signout, staff_signin

__all__ = [
    "appservices_signin",
    "appservices_signout",
    "create_key",
    "delete_key",
    "disable_key",
    "enable_key",
    "key_detail",
    "keys",
    "signout",
    "staff_signin",
]
