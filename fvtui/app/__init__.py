"""The Textual face of fvtui."""


def run_app(store, **kwargs) -> int:
    from ..errors import UserError

    raise UserError("the app is not built yet; use --headless")
