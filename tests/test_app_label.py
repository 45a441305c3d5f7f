"""The labelling screen driven with Textual's pilot: a person labels the initial set and a round by key
presses, leaves mid-batch, comes back, and finds every label typed so far kept."""

from __future__ import annotations

import dataclasses

import pytest

from test_app_support import demo_loader, notified, screen_text, tiny_config, wait_for, wait_state
from test_oracle import CLASSES, unlabelled_folder
from test_own_data import image_folder

from fvtui.app.app import make_app
from fvtui.app.screens.label import LabelScreen, class_keys
from fvtui.app.screens.session import SessionScreen
from fvtui.config import RoundSettings, SessionConfig
from fvtui.oracles import LabelBook
from fvtui.records import LabelRequest
from fvtui.store import SessionStore


def labelling(app, round_index: int) -> bool:
    """The labelling screen of this batch is up, a sample on show."""
    return (isinstance(app.screen, LabelScreen) and app.screen.request.round == round_index
            and app.screen.current is not None)


async def sees(pilot, app, *texts: str) -> None:
    await wait_for(pilot, lambda: all(t in screen_text(app) for t in texts), timeout=30, what=" and ".join(texts))


def book(store, name: str) -> LabelBook:
    with store.open(name, writable=False) as session:
        return LabelBook(session.label_journal().read())


async def test_labelling_by_keys_survives_leaving_mid_batch(tmp_path, demo):
    store = SessionStore(tmp_path / "sessions")
    config = dataclasses.replace(tiny_config(augment="none", rounds=1, query_size=3), init_size=4, oracle="human")
    app = make_app(store, new_config=config, new_name="h", loader=demo_loader(demo))
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: labelling(app, 0), what="the initial set's labelling screen")
        screen = app.screen
        first = screen.request.indices
        await sees(pilot, app, "0 / 4 labelled", "no guess yet", " 9  Ankle boot")  # each class beside its key
        await pilot.press("3", "5", "s")  # two labels and a skip
        await sees(pilot, app, "2 / 4 labelled · 1 skipped")
        await pilot.press("u")  # the skip taken back: that sample is on show again
        await sees(pilot, app, "answer taken back")
        assert screen.current == first[2] and "2 / 4 labelled" in screen_text(app)
        await pilot.press("z", "c")  # zoom and contrast change the picture, not the labels
        assert screen.zoomed and screen.contrast and not screen.query_one("#label-side").display
        await pilot.press("z", "7", "2")
        await wait_for(pilot, lambda: labelling(app, 1), what="round 1's labelling screen")
        await sees(pilot, app, "0 / 3 labelled", "the model's guess: ", "at eps 0.06")
        asked = app.screen.request.indices
        await pilot.press("1")
        await sees(pilot, app, "1 / 3 labelled")
        # the person leaves mid-batch (as a quit or a crash would: the app ends, the round is not saved)
    assert book(store, "h").labels == {**dict(zip(first, [3, 5, 7, 2])), asked[0]: 1}

    with store.open("h") as session:
        assert session.initial().labeled.tolist() == sorted(first) and not session.rounds
    app = make_app(store, session=store.open("h"), loader=demo_loader(demo))
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: labelling(app, 1), what="the same batch again")
        await sees(pilot, app, "1 / 3 labelled")
        assert app.screen.request.indices == asked
        assert app.screen.current == asked[1]  # the first sample still waiting
        await pilot.press("escape")  # back to the session: the round waits, l comes back
        session_screen = app.screen
        assert isinstance(session_screen, SessionScreen)
        await pilot.press("l")
        assert labelling(app, 1)
        keys = {c: key for key, c in class_keys(demo.classes).items()}
        await pilot.press(keys[8], keys[0])
        await wait_state(pilot, session_screen, "finished")
        record = session_screen.session.rounds[0]
    assert [(q.index, q.label) for q in record.queried] == list(zip(asked, [1, 8, 0]))
    assert record.labeled == 7


def test_the_hint_says_when_a_guess_is_certified_and_confident(demo):
    request = LabelRequest(3, (10, 11, 12), predicted=(1, 1, 2), confidence=(0.97, 0.55, 0.99),
                           certified=(True, True, False), eps=0.06)
    screen = LabelScreen(oracle=None, dataset=demo, request=request)
    hints = [screen._hint_text(position).plain for position in range(3)]
    assert hints == ["certified robust at eps 0.06 and 97% sure: the guess is likely right (a hint: you decide)",
                     "certified robust at eps 0.06, but only 55% sure",
                     "not certified at eps 0.06: the model is fragile here"]
    assert screen._hint_text(0).style == "green"  # the one case worth a person's attention
    keys = class_keys(tuple(f"c{i}" for i in range(14)))
    assert list(keys)[:12] == [*"0123456789", "a", "b"] and "d" in keys and not set("cqsuz") & set(keys)


async def test_unlabelled_images_in_the_app_ask_a_person_or_are_refused_in_place(tmp_path, demo):
    pool, test = tmp_path / "pool", image_folder(tmp_path / "test", demo, per_class=4, classes=CLASSES)
    truth = unlabelled_folder(pool, demo, per_class=5)
    store = SessionStore(tmp_path / "sessions")
    refused = SessionConfig(str(pool), rounds=1, init_size=4, hidden=(8,), epochs=1, test=str(test), oracle="dataset",
                            settings=RoundSettings(strategy="margin", augment="none", query_size=2, pool_size=10))
    app = make_app(store, new_config=refused, new_name="no")  # the real loader reads the PNGs
    notes = notified(app)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_state(pilot, app.screen, "closed")  # the worker ended: the data was refused
        # the runner's state is the worker thread's; the screen shows its message once it has handled it
        await wait_for(pilot, lambda: any("--oracle dataset: these images have no labels of their own" in note
                                          for note in notes), 30, "the refusal shown")
    assert app.exit_code == 2 and store.names() == []  # nothing was created

    app = make_app(store, new_config=dataclasses.replace(refused, oracle="auto"), new_name="yes")
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: labelling(app, 0), what="the labelling screen")
        screen = app.screen
        index, classes = screen.current, screen.dataset.classes
        shown = screen.dataset.image_file(index)
        await sees(pilot, app, "0 / 4 labelled", shown.name, " 0  Sneaker", " 2  Trouser")
        assert " 3 " not in screen.query_one("#label-classes").render().plain  # three classes, three keys
        await pilot.press(str(classes.index(truth[shown.name])))
        await sees(pilot, app, "1 / 4 labelled")
    assert book(store, "yes").labels == {index: classes.index(truth[shown.name])}


@pytest.mark.parametrize("augment, notice", [("fv", "this round's samples open once their searches start"),
                                             ("none", "this round's samples open once it is saved")])
async def test_a_round_waiting_for_labels_says_when_its_samples_open(tmp_path, demo, augment, notice):
    """A running round opens in the inspector once its fv searches run; before (here: its labels wanted),
    or in a round that verifies nothing, enter on a sample says when it will."""
    from fvtui.app.widgets.previews import InspectRequested

    store = SessionStore(tmp_path / "sessions")
    config = dataclasses.replace(tiny_config(augment=augment, rounds=1, query_size=3), init_size=4, oracle="human")
    app = make_app(store, new_config=config, new_name="h", loader=demo_loader(demo))
    async with app.run_test(size=(100, 32)) as pilot:
        said = notified(app)
        await wait_for(pilot, lambda: labelling(app, 0), what="the initial set's labelling screen")
        await pilot.press("3", "5", "7", "2")
        await wait_for(pilot, lambda: labelling(app, 1), what="round 1's labelling screen")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionScreen), what="the session screen")
        app.screen.post_message(InspectRequested(1, 0))  # what enter on its first picture sends
        await wait_for(pilot, lambda: notice in said, timeout=30, what=lambda: f"{notice!r} in {said}")
        assert isinstance(app.screen, SessionScreen)
