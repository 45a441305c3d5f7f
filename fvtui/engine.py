"""One active-learning session, round by round: select -> label -> augment -> train -> evaluate.

The engine knows nothing of any UI: it reads and commits through a `Session`, and reports through
events. Every random choice comes from (seed, round, purpose), and every round retrains from the
saved initial weights, so a resumed session replays an uninterrupted one exactly.

As in the authors' main.py, the initial labeled samples train only the initial network: a round
trains on the samples queried so far plus every synthetic sample (unless `train_initial`).

Labels come from an `Oracle`: the dataset's own, or a person's. A person labels the initial set
(drawn at random, before any network exists) as the first batch, then each round's queried
samples, seeing the model's guess, its probability and whether interval bounds already certify it;
a sample they skip returns to the pool.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from typing import Callable

import numpy as np
import torch

from . import model as nn_model
from .augment import AUGMENTATIONS, AugmentContext, verifies
from .data import Dataset, check_room
from .errors import Cancelled, UserError
from .events import (EventSink, LabelsWanted, Log, PhaseProgress, PhaseStarted, RoundFinished, RoundStarted,
                     SampleSearching, SampleVerified, SamplesQueried)
from .records import LabelRequest, QueriedSample, RoundRecord, SampleVerification, SyntheticBatch
from .seeding import rng_for, seed_for
from .store import LABELS_FILE, CorruptSession, Session, now
from .strategies import STRATEGIES, SelectionContext

# Small matrices: one thread is as fast as two, and two threads collapse (30x here) when the other
# core is busy with a solver or a second session, because OpenMP's workers spin on each other.
TORCH_THREADS = 1


class Engine:
    def __init__(self, session: Session, dataset: Dataset, *, workers: int | None = None,
                 on_event: EventSink | None = None, cancel: threading.Event | None = None,
                 solver_factory: Callable[[int | None], object] | None = None, oracle=None) -> None:
        if session.config.dataset != dataset.name:
            raise UserError(f"session '{session.name}' uses dataset '{session.config.dataset}', not '{dataset.name}'")
        self.session = session
        self.data = dataset
        self.workers = workers
        self.emit: EventSink = on_event or (lambda event: None)
        self.cancel = cancel or threading.Event()
        self._solver = None
        # A Cluster's DaskSolver, or a test's fake; by default a SolverPool of `workers`.
        self._solver_factory = solver_factory
        torch.set_num_threads(TORCH_THREADS)
        self._check_data()
        from .oracles import oracle_for

        # The app hands in a person who waits at the screen; by default a person's labels stop the run.
        self.oracle = oracle if oracle is not None else oracle_for(session, dataset, wait=False)
        self.labels = self.data.train_y.clone()  # the dataset's labels, under every answer a person gave
        for index, label in self.oracle.known().items():
            self.labels[index] = label
        self._prepare()

    # -- state ---------------------------------------------------------------------------------
    def _check_data(self) -> None:
        """Own data: record every file's hash on the first run, and refuse files changed since."""
        from .own_data import check_unchanged, fingerprint

        if self.data.files and self.session.data_fingerprint() is None:
            self.session.save_data_fingerprint(fingerprint(list(self.data.files)))
        check_unchanged(self.session, self.data)

    def _prepare(self) -> None:
        """Load the initial model and everything the finished rounds added, training it if new."""
        cfg = self.session.config
        initial = self.session.initial()
        if initial is None:
            self.emit(PhaseStarted(0, "initial"))
            check_room(self.data, cfg, self.session.settings)
            n = self.data.train_x.shape[0]
            labeled = np.sort(rng_for(cfg.seed, 0, "initial").choice(n, cfg.init_size, replace=False))
            labeled, _ = self._label(0, labeled, None)
            net = nn_model.new_model(self.data.num_features, cfg.hidden, self.data.num_classes,
                                     seed_for(cfg.seed, 0, "weights"), init=cfg.init)
            self._train(net, labeled, SyntheticBatch.empty(self.data.num_features), round_index=0)
            accuracy = nn_model.accuracy(net, self.data.test_x, self.data.test_y)
            self.session.save_initial(labeled, nn_model.state_to_numpy(net), accuracy)
            initial = self.session.initial()
            self.emit(Log(f"initial model: {cfg.init_size} labeled, test accuracy {accuracy:.4f}"))
        self.initial = initial
        self.labeled = np.concatenate([initial.labeled] + [self.session.queried_indices(r.round)
                                                           for r in self.session.rounds])
        if (self.labels[self.labeled] < 0).any():  # a person's labels are only in the label journal
            missing = int((self.labels[self.labeled] < 0).sum())
            raise CorruptSession(f"{self.session.path / LABELS_FILE}: the labels of {missing} labelled samples are "
                                 "missing (the file was deleted or edited)")
        self.synthetic = [self.session.synthetic(r.round) for r in self.session.rounds]
        self.model = self._load_model(len(self.session.rounds))

    def _load_model(self, round_index: int) -> nn_model.MLP:
        cfg = self.session.config
        return nn_model.model_from_numpy(self.session.model_state(round_index), self.data.num_features,
                                         cfg.hidden, self.data.num_classes)

    @property
    def rounds_done(self) -> int:
        return len(self.session.rounds)

    @property
    def finished(self) -> bool:
        return self.session.finished

    @property
    def solver(self):
        """The solver pool, started on first use (only verifying augmentations and the inspector need it)."""
        if self._solver is None:
            if self._solver_factory is None:
                from .verify import SolverPool

                self._solver_factory = SolverPool
            self._solver = self._solver_factory(self.workers)
        return self._solver

    def close(self) -> None:
        if self._solver is not None:
            self._solver.close()
            self._solver = None

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running -------------------------------------------------------------------------------
    def run(self, should_pause: Callable[[], bool] = lambda: False) -> None:
        """Run rounds until the session's target is reached or a pause is asked for."""
        while not self.finished and not should_pause():
            self.run_round()

    def run_round(self) -> RoundRecord:
        cfg, settings = self.session.config, self.session.settings
        r = self.rounds_done + 1
        self.emit(RoundStarted(r, cfg.rounds, settings))
        seconds: dict[str, float] = {}
        if verifies(settings.augment):  # started now, its workers import their solvers while the round selects
            self.solver  # noqa: B018

        with _Phase(self, r, "select", seconds):
            unlabeled = np.setdiff1d(np.arange(self.data.train_x.shape[0]), self.labeled)
            pool_size = min(settings.pool_size, unlabeled.size)
            if pool_size < settings.query_size:
                raise UserError(f"only {unlabeled.size} unlabeled samples are left, fewer than the query size "
                                f"{settings.query_size}")
            pool = rng_for(cfg.seed, r, "pool").choice(unlabeled, pool_size, replace=False)
            context = SelectionContext(self.model, self.data.train_x[pool], self.data.train_x[self._trained_on()],
                                       rng_for(cfg.seed, r, "strategy"), legacy=cfg.legacy)
            selection = STRATEGIES[settings.strategy](context, settings.query_size)
            queried = pool[selection.positions]

        with _Phase(self, r, "label", seconds):
            kept, labels = self._label(r, queried, self.model)
            if kept.size < queried.size:  # skipped samples return to the pool
                selection = selection.subset(np.isin(queried, kept))
                queried = kept
            predicted = nn_model.predict(self.model, self.data.train_x[queried])
            labeled = np.concatenate([self.labeled, queried])
            picks = [QueriedSample(int(i), int(y), float(s), int(p))
                     for i, y, s, p in zip(queried, labels, selection.scores, predicted)]
        self.emit(SamplesQueried(r, tuple(picks)))

        with _Phase(self, r, "augment", seconds):
            needs_solver = verifies(settings.augment)
            replay, save = {}, (lambda item, data: None)
            if needs_solver:
                journal = self.session.journal(r, self._journal_key(r, settings, queried, labels))
                state = journal.start()
                replay, save = state.entries, journal.append
                if state.entries or state.torn or state.foreign:
                    self.emit(Log(f"round {r}: {len(state.entries)} samples verified before the interruption "
                                  f"are reused; {state.torn} torn journal lines dropped, {state.foreign} entries "
                                  "of other weights or settings refused (solved again)"))
            result = AUGMENTATIONS[settings.augment](AugmentContext(
                model=self.model, x=self.data.train_x[queried], y=labels, source=queried, selection=selection,
                settings=settings, solver=self.solver if needs_solver else None, cancel=self.cancel,
                on_sample=self._progress_reporter(r, queried.size), legacy=cfg.legacy,
                on_search=lambda row, progress: self.emit(SampleSearching(r, row, progress.eps, progress.found,
                                                                          progress.queries, progress.started)),
                replay=replay, save=save,
            ))

        with _Phase(self, r, "train", seconds):
            synthetic = [*self.synthetic, result.synthetic]
            model = self._train(self._load_model(0), self._trained_on(labeled), SyntheticBatch.concat(
                                synthetic, self.data.num_features), round_index=r)

        with _Phase(self, r, "evaluate", seconds):
            accuracy = nn_model.accuracy(model, self.data.test_x, self.data.test_y)

        self._check_cancel()
        record = RoundRecord(
            round=r, settings=settings, labeled=int(labeled.size), synthetic=sum(len(b) for b in synthetic),
            queried=picks,
            verification=result.verification, queries=result.queries, seconds=seconds,
            test_accuracy=accuracy, pool_size=int(pool_size), new_synthetic=len(result.synthetic),
            finished_at=now(),
        )
        self.session.commit_round(record, result.synthetic, nn_model.state_to_numpy(model))
        self.labeled, self.synthetic, self.model = labeled, synthetic, model
        self.emit(RoundFinished(record))
        return record

    def _label(self, r: int, indices: np.ndarray, model: nn_model.MLP | None) -> tuple[np.ndarray, torch.Tensor]:
        """Ask the oracle for these samples' labels: (the samples kept, in order; their labels). A person is
        shown the model's guesses (none before the initial network) and is waited for."""
        request = LabelRequest(r, tuple(int(i) for i in indices))
        if self.oracle.person and model is not None:
            from .verify.interval import certified

            x = self.data.train_x[indices]
            probabilities = torch.softmax(nn_model.logits(model, x), dim=1)
            confidence, predicted = probabilities.max(dim=1)
            eps = self.session.settings.eps_start
            request = LabelRequest(r, request.indices, tuple(predicted.tolist()),
                                   tuple(round(float(c), 6) for c in confidence),
                                   tuple(bool(c) for c in certified(nn_model.to_network(model), x.numpy(), eps)), eps)
        pending = self.oracle.ask(request)
        if pending:
            self.emit(LabelsWanted(request, pending))
        answers = self.oracle.answers(request, self.cancel)
        kept = np.array([i for i in request.indices if i in answers], dtype=np.int64)
        self.labels[kept] = torch.tensor([answers[int(i)] for i in kept], dtype=torch.int64)
        return kept, self.labels[kept]

    def _journal_key(self, r: int, settings, queried: np.ndarray, labels: torch.Tensor) -> str:
        """What a round's work depends on: its journal reuses entries only under the same key (the target
        number of rounds is left out: raising it on resume changes nothing in this round; so is the oracle
        setting, and a person's labels, which the synthetic samples carry, are hashed instead)."""
        config = {k: v for k, v in self.session.config.to_dict().items() if k not in ("rounds", "oracle")}
        digest = hashlib.sha256(json.dumps([r, dataclasses.asdict(settings), config], sort_keys=True).encode())
        for name, value in sorted(nn_model.state_to_numpy(self.model).items()):
            digest.update(name.encode())
            digest.update(value.tobytes())
        digest.update(np.asarray(queried, np.int64).tobytes())
        if self.oracle.person:
            digest.update(labels.numpy().astype(np.int64).tobytes())
        return digest.hexdigest()[:32]

    def _trained_on(self, labeled: np.ndarray | None = None) -> np.ndarray:
        """The labeled samples a round trains on: the queried ones, and the initial ones if asked."""
        labeled = self.labeled if labeled is None else labeled
        if self.session.config.train_initial:
            return labeled
        return labeled[self.initial.labeled.size:]

    def _train(self, net: nn_model.MLP, labeled: np.ndarray, synthetic: SyntheticBatch, round_index: int):
        cfg = self.session.config
        x = torch.cat([self.data.train_x[labeled], torch.from_numpy(synthetic.x)])
        y = torch.cat([self.labels[labeled], torch.from_numpy(synthetic.y)])
        return nn_model.train(net, x, y, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                              seed=seed_for(cfg.seed, round_index, "train"), adam_eps=cfg.adam_eps)

    def _progress_reporter(self, r: int, total: int) -> Callable[[int, SampleVerification, SyntheticBatch], None]:
        done = 0

        def report(position: int, record: SampleVerification, points: SyntheticBatch) -> None:
            nonlocal done
            done += 1
            self.emit(SampleVerified(r, position, record, points))
            self.emit(PhaseProgress(r, "augment", done, total))

        return report

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()



class _Phase:
    """Times a phase, announces it, and honours a cancel request before it starts."""

    def __init__(self, engine: Engine, r: int, phase: str, seconds: dict[str, float]) -> None:
        self.engine, self.r, self.phase, self.seconds = engine, r, phase, seconds

    def __enter__(self) -> None:
        self.engine._check_cancel()
        self.engine.emit(PhaseStarted(self.r, self.phase))
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.seconds[self.phase] = round(time.perf_counter() - self.start, 4)

