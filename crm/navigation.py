"""The console's main navigation; each area adds its own links with add_nav_item."""
from dataclasses import dataclass

from flask_login import current_user


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    roles: tuple


_items: list[NavItem] = []


def add_nav_item(label: str, endpoint: str, *roles: str) -> None:
    """Add a link to the console navigation for the given roles (all staff when none)."""
    item = NavItem(label, endpoint, roles)
    if item not in _items:
        _items.append(item)


def nav_items() -> list[NavItem]:
    """Return the links the signed-in user may follow."""
    if not current_user.is_authenticated:
        return []
    return [i for i in _items if not i.roles or current_user.has_role(*i.roles)]


def init_app(app):
    """Make nav_items() available to templates."""
    app.jinja_env.globals["nav_items"] = nav_items
