"""The Textual face of fvtui: `run_app` is what the CLI calls; `app.make_app` builds the app."""

from __future__ import annotations


def run_app(store, *, new_config=None, new_name: str | None = None, resume_name: str | None = None,
            data_dir: str | None = None, workers: int | None = None, images: str | None = None, screen=None,
            cluster=None) -> int:
    """Open the browser, a new session, a saved one, or `screen` alone (e.g. the inspector over an
    ONNX network's samples); returns the exit code.

    What can be refused is refused before the terminal is taken over (a UserError for the CLI to
    print: a locked session; a resume's changes are checked and saved by the CLI before); a new session
    is created only once its data loaded.
    """
    from . import images as pictures

    # How pictures are drawn: `images` (--images), FVTUI_IMAGES, or the terminal's answers, asked for
    # here, before Textual reads the keyboard (an unknown mode is a UserError).
    pictures.configure(images)
    from .app import make_app

    session = None
    if resume_name is not None:
        session = store.open(resume_name)
    app = make_app(store, new_config=new_config, new_name=new_name, session=session, data_dir=data_dir,
                   workers=workers, screen=screen, cluster=cluster)
    try:
        app.run()
    finally:
        app.close_pool()
        if session is not None:
            session.close()
    return app.return_code or 0
