"""Paper tables as plain constants: their cells, their layout, the paper's numbers, the profiles.

A table is a grid of cells; a cell is one method with the config fields it fixes (model, fraction,
p_r, ...) and the number the paper printed there. A profile changes budgets (epochs, batch size,
learning rate), never the cells. ``plan`` expands tables x seeds into the trials Ray Tune runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from harness.config import ConfigError, check, config_hash
from harness.registry import Registry, UnknownName

PROFILES = ("smoke", "mini", "converge", "paper")
# A profile may substitute what a 2-core CPU cannot run to convergence: {"dataset": name, "model": {paper's:
# ours}, "note": why}. The cells keep the paper's labels; every report of such a run says what ran instead.
SUBSTITUTE = "substitute"
MODEL_KEYS = ("model", "teacher_model")  # cell settings naming a network: a profile's SUBSTITUTE["model"] maps both

PAPERS = {
    "gansweep": "gansweep's own default grid (no paper)",
    "pennisi2021": "Pennisi, Palazzo, Spampinato. Self-improving classification performance through "
                   "GAN distillation. ICCV 2021 workshop (ILDAV)",
    "pham2019": "Pham, Dutt, Pellerin, Quénot. Classifier Training from a Generative Model. CBMI 2019",
    "slim2020": "Slim. Boosting Generative Networks for Incremental Learning. Grenoble INP report, 2020",
    "addepalli2020": "Addepalli, Nayak, Chakraborty, Babu. DeGAN: Data-Enriching GAN for Retrieving Representative "
                     "Samples from a Trained Classifier. AAAI 2020",
}


@dataclass(frozen=True)
class Cell:
    """One cell of a paper table: a method run with ``settings`` fixed, and the paper's number."""

    row: str  # the paper's row label
    col: str  # the paper's column label
    method: str  # a registered method
    settings: Mapping[str, Any]  # config fields this cell fixes
    paper: float | None = None  # the paper's number; None where it is not reported (or garbled)
    metric: str | None = None  # the metric shown in this cell (None: the table's); e.g. a FID beside accuracies

    @property
    def name(self) -> str:
        return f"{self.row} | {self.col}"


@dataclass(frozen=True)
class Gain:
    """A derived row of a paper table: ``of`` minus ``over`` per column (our means and the paper's)."""

    row: str  # the label, e.g. "Gain"
    of: str  # the row whose value is reduced by ...
    over: str  # ... this row's (usually "Baseline")
    paper: Mapping[str, float | None]  # column -> the paper's printed gain


@dataclass(frozen=True)
class Reported:
    """A row a paper prints from other work (DeGAN's Kimura et al. and ZSKD rows): the report shows its printed
    numbers below the table's own rows, marked as not run. No method here computes it, so no trial is planned."""

    row: str  # the paper's row label
    source: str  # whose result it is, as the paper cites it
    paper: Mapping[str, float]  # column -> the printed number


@dataclass(frozen=True)
class Claim:
    """A headline claim of a paper, as comparisons between rows of one table: every row of ``better``
    beats every row of ``worse`` (on the table's metric, higher is better unless ``lower_is_better``)
    in each of ``cols`` (empty: every column both rows have).

    The report tests each comparison on paired differences over seeds (seed s of every method shares
    the split and stage 1): reproduced when every comparison's 95% CI lies above 0 in the paper's
    direction, contradicted when any lies below, inconclusive otherwise; with the budget it was tested at.
    """

    text: str  # the claim in the paper's words (shortened)
    table: str  # the table whose cells test it
    better: tuple[str, ...]  # row labels expected to be better ...
    worse: tuple[str, ...]  # ... than each of these rows
    cols: tuple[str, ...] = ()  # columns where it must hold (empty: all)
    lower_is_better: bool = False  # a FID, an error rate
    ours: bool = False  # True: gansweep's own control (e.g. vs the compute-matched baseline), not the paper's


CLAIMS: dict[str, tuple[Claim, ...]] = {}  # paper key -> its claims, in the order the report lists them


def register_claims(paper: str, claims: list[Claim]) -> None:
    check(paper in PAPERS, f"claims for unknown paper {paper!r}")
    CLAIMS[paper] = tuple(claims)


@dataclass(frozen=True)
class Table:
    """A paper table (or our own grid) and how to run it at each profile."""

    name: str  # what the user types: <paper>.<table>
    paper: str  # a key of PAPERS
    title: str
    dataset: str  # the paper's dataset (``--dataset`` substitutes another, and the report says so)
    metric: str  # the metric the paper reports in this table (a harness.metrics name)
    cells: tuple[Cell, ...]
    profiles: Mapping[str, Mapping[str, Any]]  # profile -> config fields (budgets only)
    notes: str = ""  # what the report prints under the table (garbled cells, substitutions)
    seeds: int = 3  # default number of seeds
    gains: tuple[Gain, ...] = ()  # derived rows (the papers' "Gain" lines)
    figure: str | None = None  # a figure's renderer in reports.figures (None: a table)
    reported: tuple[Reported, ...] = ()  # rows of other work the paper prints, shown and never run

    def __post_init__(self):
        extra = sorted({col for r in self.reported for col in r.paper} - set(self.cols))
        check(not extra, f"{self.name}: reported rows name columns the table does not have: {extra}")
        check(not {r.row for r in self.reported} & set(self.rows), f"{self.name}: a reported row is also run")
        check(set(self.profiles) == set(PROFILES), f"{self.name}: profiles must be exactly {PROFILES}")
        budget_keys = {k for p in self.profiles.values() for k in p} - {SUBSTITUTE}
        clash = budget_keys & {k for c in self.cells for k in c.settings}
        check(not clash, f"{self.name}: profiles set cell fields {sorted(clash)}")

    def config(self, cell: Cell, profile: str, seed: int, dataset: str | None = None,
               fraction: float | None = None):
        """The complete config of ``cell`` at ``profile`` and ``seed``.

        A profile is the table's budget for all its methods: each method's config takes the profile
        fields it has (the baseline has no GAN); a profile field that no method of the table has is
        an error, so a misspelt budget cannot be silently ignored.
        """
        from trainables import METHODS

        Config = METHODS[cell.method].Config
        names = {f.name for f in dataclasses.fields(Config)}
        known = set().union(*({f.name for f in dataclasses.fields(METHODS[c.method].Config)} for c in self.cells))
        budget = {k: v for k, v in self.profiles[profile].items() if k != SUBSTITUTE}
        unknown = sorted(set(budget) - known)
        check(not unknown, f"{self.name}: profile {profile} sets {unknown}, which no method of the table has")
        sub = self.profiles[profile].get(SUBSTITUTE, {})
        fields = {k: v for k, v in budget.items() if k in names}
        settings = dict(cell.settings)
        for key in MODEL_KEYS:  # the cell's networks (a student's teacher too)
            if key in settings:
                settings[key] = sub.get("model", {}).get(settings[key], settings[key])
        if "proxy" in settings:  # a proxy dataset (DeGAN's) the profile runs another instead of
            settings["proxy"] = sub.get("proxy", {}).get(settings["proxy"], settings["proxy"])
        fields.update(settings, dataset=dataset or sub.get("dataset") or self.dataset, seed=seed)
        if fraction is not None:
            fields["fraction"] = fraction
        try:
            return dataclasses.replace(Config(), **fields)
        except TypeError as exc:  # a cell setting the method's config does not have
            raise ConfigError(f"{self.name} / {cell.name}: {exc}") from None

    def substitution(self, profile: str) -> str | None:
        """What ``profile`` runs instead of the paper's dataset and backbones, in words (None: nothing)."""
        sub = self.profiles.get(profile, {}).get(SUBSTITUTE)
        if not sub:
            return None
        models = sorted({c.settings[k] for c in self.cells for k in MODEL_KEYS if k in c.settings})
        proxies = list(dict.fromkeys(c.settings["proxy"] for c in self.cells if "proxy" in c.settings))
        parts = [f"{sub['dataset']} for {self.dataset}"] if sub.get("dataset") else []
        parts += [f"{sub['model'][m]} for {m}" for m in models if m in sub.get("model", {})]
        parts += [f"proxy {sub['proxy'][p].text} for {p.text}" for p in proxies if p in sub.get("proxy", {})]
        return "; ".join(dict.fromkeys(parts)) + (f" ({sub['note']})" if sub.get("note") else "")

    @property
    def rows(self) -> list[str]:
        return list(dict.fromkeys(c.row for c in self.cells))

    @property
    def cols(self) -> list[str]:
        return list(dict.fromkeys(c.col for c in self.cells))


TABLES: Registry[Table] = Registry("table")


def register_table(table: Table) -> Table:
    return TABLES.register(table.name)(table)


# ---- search parameters: what a search varies, and how Optuna draws it ------------------------------------
# harness.search maps them to Ray Tune's domains (tune.uniform / loguniform / randint / choice), which
# OptunaSearch turns into Optuna's Float-, Int- and CategoricalDistribution, and the exported study uses the same.


@dataclass(frozen=True)
class Float:
    """A float in [low, high], drawn uniformly, or log-uniformly with ``log`` (for scales: a learning rate)."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self):
        check(all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (self.low, self.high))
              and self.low < self.high, f"Float({self.low!r}, {self.high!r}): need numbers low < high")
        check(not self.log or self.low > 0, f"Float({self.low}, {self.high}, log=True): a log scale needs low > 0")

    def cast(self, value) -> float:
        return float(value)

    def __str__(self) -> str:
        return f"[{self.low:g}, {self.high:g}]" + (" (log scale)" if self.log else "")


@dataclass(frozen=True)
class Int:
    """An integer in [low, high], both included, drawn uniformly."""

    low: int
    high: int

    def __post_init__(self):
        check(all(isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high))
              and self.low < self.high, f"Int({self.low!r}, {self.high!r}): need integers low < high")

    def cast(self, value) -> int:
        return int(value)

    def __str__(self) -> str:
        return f"{{{self.low}, ..., {self.high}}}"


CHOICE_TYPES = (str, bool, int, float)  # what an Optuna CategoricalDistribution and a Parquet column hold


@dataclass(frozen=True)
class Choice:
    """One of ``values`` (at least two, distinct, all str, all bool, all int or all float), drawn uniformly."""

    values: tuple

    def __post_init__(self):
        values = self.values
        check(isinstance(values, (tuple, list)) and len(values) >= 2 and type(values[0]) in CHOICE_TYPES
              and all(type(v) is type(values[0]) for v in values) and len(set(values)) == len(values),
              f"Choice({values!r}): need a tuple of at least two distinct values of one type (str, bool, int, float)")
        object.__setattr__(self, "values", tuple(values))

    def cast(self, value):
        """``value`` as the declared choice (a Parquet column gives numpy scalars back)."""
        for v in self.values:
            if v == value:
                return v
        raise ConfigError(f"{value!r} is not one of {self.values}")

    def __str__(self) -> str:
        return "{" + ", ".join(map(str, self.values)) + "}"


Param = Float | Int | Choice


def shown(value) -> str:
    """A parameter's value in a report or a log line: floats to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class SearchSpace:
    """An Optuna search over some config fields of one cell, on a table's data and profiles."""

    name: str  # what the user types: <paper>.<name>
    table: str  # the table whose dataset and profiles the search uses
    cell: Cell  # the method and the fields it fixes (model, fraction)
    params: Mapping[str, Param]  # config field -> Float, Int or Choice; a (low, high) pair means Float(low, high)
    metric: str  # reported every epoch; the objective and ASHA's signal
    mode: str = "max"

    def __post_init__(self):
        # NOTE: that each field exists in the method's config, with the declared type and legal bounds, is checked
        # by harness.search.check_params (it needs the methods, whose import imports Ray): before a search
        # starts, and for every registered space in tests/test_search.py.
        check(bool(self.params), f"search space {self.name}: no parameters")
        params = {k: Float(*p) if isinstance(p, tuple) and len(p) == 2 else p for k, p in self.params.items()}
        for k, p in params.items():
            check(isinstance(p, Param), f"search space {self.name}: parameter {k} = {p!r} is not a Float, Int, "
                                        "Choice or (low, high) pair")
        check(self.mode in ("max", "min"), f"search space {self.name}: mode {self.mode!r} is not max or min")
        object.__setattr__(self, "params", params)


SEARCH_SPACES: Registry[SearchSpace] = Registry("search space")


def register_search(space: SearchSpace) -> SearchSpace:
    return SEARCH_SPACES.register(space.name)(space)


@dataclass(frozen=True)
class Trial:
    """One cell at one seed, with its complete config."""

    table: str
    cell: Cell
    profile: str
    config: Any  # the method's config dataclass
    identity: str = ""  # set by the launcher once the data is fingerprinted (harness.identity)
    config_hash: str = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "config_hash", config_hash(self.config, self.cell.method))


# Fields that are not overrides of a cell: the seed is the replicate, the dataset has its own column.
NOT_OVERRIDES = ("seed", "dataset")


def overrides(trial: Trial) -> dict[str, Any]:
    """The config fields where ``trial`` departs from its table's cell at its profile (from the command
    line, or a config given by hand such as a search's best): reports show such runs apart, never
    inside the paper's cell."""
    if trial.table not in TABLES:
        return {}
    table = TABLES[trial.table]
    usual = dataclasses.asdict(table.config(trial.cell, trial.profile, trial.config.seed, trial.config.dataset))
    mine = dataclasses.asdict(trial.config)
    return {k: v for k, v in mine.items() if k not in NOT_OVERRIDES and usual.get(k) != v}


def parse_sets(items: list[str]) -> dict[str, str]:
    """``--set FIELD=VALUE`` arguments as {field: the value's text}; typed per config by :func:`apply_sets`."""
    sets = {}
    for item in items:
        field_name, eq, value = item.partition("=")
        field_name = field_name.strip()
        if eq and "." in field_name:
            raise ConfigError(f"--set {field_name}: nested fields (the GAN's) cannot be set from the command line")
        if not eq or not field_name.isidentifier():
            raise ConfigError(f"--set {item}: expected FIELD=VALUE, e.g. --set epochs=100")
        if field_name in sets:
            raise ConfigError(f"--set {field_name} is given twice")
        if field_name in NOT_OVERRIDES or field_name == "fraction":
            raise ConfigError(f"--set {field_name}: use --{'seeds' if field_name == 'seed' else field_name} instead")
        sets[field_name] = value.strip()
    return sets


def _typed(field_name: str, text: str, current):
    """``text`` as a value of the type ``current`` has (bool, int, float, str, or a tuple of numbers)."""
    try:
        if isinstance(current, bool):
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError
            return lowered in ("true", "1")
        if isinstance(current, (int, float, str)):
            return type(current)(text)
        if isinstance(current, tuple) and all(isinstance(v, (int, float)) for v in current):
            return tuple(float(v) if "." in v else int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        kind = {bool: "true or false", int: "an integer", float: "a number"}.get(type(current), "numbers, comma-separated")
        raise ConfigError(f"--set {field_name}={text}: expected {kind}, like its usual value {current!r}") from None
    raise ConfigError(f"--set {field_name}: a {type(current).__name__} field cannot be set from the command line")


def apply_sets(config, sets: Mapping[str, str], where: str):
    """``config`` with the ``--set`` fields replaced (validated by the config itself). Every field must be one
    of the method's config (``where`` names the cell for the error); nested fields (the GAN's) are not offered."""
    names = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(sets) - names)
    if unknown:
        raise ConfigError(f"--set {unknown[0]}: {where} has no such config field (narrow the cells with --methods)")
    values = {k: _typed(k, v, getattr(config, k)) for k, v in sets.items()}
    try:
        return dataclasses.replace(config, **values)
    except ConfigError as exc:  # the config's own checks (e.g. epochs at least 1)
        raise ConfigError(f"--set {', '.join(f'{k}={v}' for k, v in sets.items())}: {exc}") from None


def plan(table_names: list[str], profile: str, seeds: int | None = None, dataset: str | None = None,
         fraction: float | None = None, methods: list[str] | None = None,
         sets: Mapping[str, str] | None = None) -> list[Trial]:
    """Every (table, cell, seed) as a Trial with a validated config; raises ConfigError or
    UnknownName on bad input, before anything runs. ``sets`` (``--set FIELD=VALUE``) replaces config fields
    of every cell: the trials are then overrides of the paper's cells, and reports show them apart."""
    from trainables import METHODS

    if profile not in PROFILES:
        raise UnknownName(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    if seeds is not None and seeds < 1:
        raise ConfigError(f"--seeds {seeds}: need at least one seed")
    for m in methods or []:
        METHODS[m]  # unknown method -> UnknownName
    trials = []
    for name in table_names:
        table = TABLES[name]
        fixed = [c for c in table.cells if "fraction" in c.settings]
        if fraction is not None and fixed:
            raise ConfigError(f"--fraction {fraction}: the cells of {name} set the train fraction themselves "
                              f"(e.g. {fixed[0].name}: {fixed[0].settings['fraction']}); it cannot be overridden")
        for cell in table.cells:
            if methods and cell.method not in methods:
                continue
            for seed in range(table.seeds if seeds is None else seeds):
                config = table.config(cell, profile, seed, dataset, fraction)
                if sets:
                    config = apply_sets(config, sets, f"{name} / {cell.name} ({cell.method})")
                trials.append(Trial(name, cell, profile, config))
    return trials


# Importing a paper's module registers its tables.
from search_spaces import addepalli2020, gansweep_cas, pennisi2021, pham2019, quickstart, slim2020  # noqa: E402,F401
