"""Sales forecast: daily and weekly net revenue (sales minus returns, THE revenue definition of the
analytics views ``daily_sales`` and ``daily_sales_by_country``), for the whole business and its largest
countries, 8 weeks ahead with prediction intervals (plain numpy, no Dagster).

The model ("weekday profile x smoothed weekly level") uses what this data supports:
- the trading calendar: the business does not trade on Saturdays (learnt: a weekday without any trading
  in the last ``profile_weeks``), on England & Wales bank holidays, Easter Sunday and Christmas Day
  (``bank_holidays``), nor during the Christmas shutdown it kept a year before (``closed_days``); closed
  days are forecast 0;
- the day of week: each series' weekday profile (mean revenue per weekday over the last
  ``profile_weeks`` of trading days, normalised to 1);
- the level and its trend (lags): de-seasonalised weekly levels (revenue of each 7-day block over the
  profile weight of its trading days), smoothed by exponential smoothing with a damped trend (Holt)
  whose parameters are fitted on the history (one-week-ahead absolute errors); optionally large one-off
  orders capped at the Tukey fence (Q3 + 1.5 IQR of the de-seasonalised revenue of the days with
  revenue, last 26 weeks) before.
The configuration (trend or not, capping or not) is chosen per series on a VALIDATION backtest (the
``validation_weeks`` before the test backtest), never on the test.

Evaluation: a rolling-origin backtest over the last ``backtest_weeks`` weeks: from each week's origin
(its last observed day) the next 7 days are forecast, by the model and by the baselines measured on
the same days: seasonal naive (the same weekday last week) and a moving average (the mean of the same
weekday over the last 4 weeks). WAPE = sum |error| / sum |actual| over the backtest days; MASE = mean
|error| / the in-sample mean |y(t) - y(t-7)| before the backtest. Prediction intervals: quantiles of the
ratio actual / forecast at each horizon (days; weekly totals), from rolling origins over the history;
the coverage reported is measured on the test backtest with quantiles from origins before it only.

Gate (``gate``): D = WAPE(seasonal naive) - WAPE(model) on the total, with its interval from resampling
backtest weeks (contract.CONFIDENCE): served when it is above 0, rejected when below, inconclusive when
it straddles 0; and no country may be confidently worse than its seasonal naive (its interval below 0).
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from ecommerce_platform.ml import runs
from ecommerce_platform.ml.contract import (
    ALL_SERIES,
    BOOTSTRAP_SAMPLES,
    CONFIDENCE,
    FORECAST_COLUMNS,
    FORECAST_INTERVAL,
    FORECAST_TABLE,
)

MODEL_PREFIX = "models/sales_forecast"
CURRENT_PREFIX = f"{MODEL_PREFIX}/current"  # what is served: forecast, backtest, plot, model.json
CANDIDATE_PREFIX = f"{MODEL_PREFIX}/candidate"  # the last run's, served or not
TABLE_PREFIX = f"{MODEL_PREFIX}/table"  # the Parquet of the table `sales_forecast` (the served forecast)
SQL_FILE = "forecast_series.sql"
MIN_LEVEL_WEEKS = 4  # weekly levels the smoothing needs before its first forecast


@dataclass
class ForecastSettings:
    horizon_weeks: int = 8
    backtest_weeks: int = 12
    validation_weeks: int = 12
    top_countries: int = 4
    profile_weeks: int = 8
    interval: float = FORECAST_INTERVAL

    @property
    def min_weeks(self) -> int:
        """Weeks of history an honest run needs: the profile, the first levels, validation and test."""
        return self.profile_weeks + MIN_LEVEL_WEEKS + self.validation_weeks + self.backtest_weeks


# ----------------------------------------------------------------------------- trading calendar
def _easter(year: int) -> date:
    from dateutil.easter import easter

    return easter(year)


def _last_monday(year: int, month: int) -> date:
    d = date(year, month + 1, 1) - timedelta(days=1) if month < 12 else date(year, 12, 31)
    return d - timedelta(days=d.weekday())


def _first_monday(year: int, month: int) -> date:
    d = date(year, month, 1)
    return d + timedelta(days=(7 - d.weekday()) % 7)


# One-off bank holidays of England & Wales, and the years a regular one was moved.
_SPECIAL = {date(1999, 12, 31), date(2002, 6, 3), date(2011, 4, 29), date(2012, 6, 5), date(2022, 6, 3),
            date(2022, 9, 19), date(2023, 5, 8)}
_SPRING_MOVED = {2002: date(2002, 6, 4), 2012: date(2012, 6, 4), 2022: date(2022, 6, 2)}
_EARLY_MAY_MOVED = {1995: date(1995, 5, 8), 2020: date(2020, 5, 8)}


def bank_holidays(year: int) -> set[date]:
    """Days shops of England & Wales close in ``year``: its bank holidays (substitute days included),
    Easter Sunday and Christmas Day (closed to large shops by the Sunday Trading Act 1994)."""
    days = set()
    new_year = date(year, 1, 1)
    days.add(new_year + timedelta(days={5: 2, 6: 1}.get(new_year.weekday(), 0)))
    e = _easter(year)
    days |= {e - timedelta(days=2), e, e + timedelta(days=1)}
    days.add(_EARLY_MAY_MOVED.get(year, _first_monday(year, 5)))
    days.add(_SPRING_MOVED.get(year, _last_monday(year, 5)))
    days.add(_last_monday(year, 8))
    christmas, boxing = date(year, 12, 25), date(year, 12, 26)
    days.add(christmas)  # closed even on a weekend (large shops, by law)
    if boxing.weekday() < 5:
        days.add(boxing)
    if christmas.weekday() == 5:  # Saturday: Monday 27 and Tuesday 28
        days |= {date(year, 12, 27), date(year, 12, 28)}
    elif christmas.weekday() == 6:  # Sunday: Boxing Day on Monday 26, Christmas on Tuesday 27
        days.add(date(year, 12, 27))
    elif boxing.weekday() == 5:  # Boxing Day on a Saturday: Monday 28
        days.add(date(year, 12, 28))
    return days | {d for d in _SPECIAL if d.year == year}


def closed_days(days: list[date], traded: set[date], history_end: date, profile_weeks: int) -> np.ndarray:
    """For future ``days``: True where the business is not expected to trade. ``traded``: the days of
    the history with any sale or return (of the whole business). Closed: a weekday without any trading
    in the last ``profile_weeks`` (Saturdays), a bank holiday (``bank_holidays``), or a Christmas-season
    day (Dec 20 - Jan 10) whose date a year before fell in the history without trading (the shutdown)."""
    start = history_end - timedelta(days=7 * profile_weeks - 1)
    recent_weekdays = {d.weekday() for d in traded if start <= d <= history_end}
    first = min(traded) if traded else history_end
    holidays: dict[int, set[date]] = {}
    out = []
    for d in days:
        if d.year not in holidays:
            holidays[d.year] = bank_holidays(d.year)
        closed = d.weekday() not in recent_weekdays or d in holidays[d.year]
        if not closed and ((d.month == 12 and d.day >= 20) or (d.month == 1 and d.day <= 10)):
            try:
                before = d.replace(year=d.year - 1)
            except ValueError:  # 29 February
                before = None
            closed = before is not None and first <= before <= history_end and before not in traded \
                and before.weekday() in recent_weekdays
        out.append(closed)
    return np.array(out, dtype=bool)


# ----------------------------------------------------------------------------- series
@dataclass
class Series:
    """One daily series on the calendar from the first to the last day of the history: ``y`` net revenue
    (0 on days without trading), ``open`` True on days the business traded."""

    name: str
    days: list  # datetime.date, consecutive
    y: np.ndarray
    open: np.ndarray

    @property
    def weekday(self) -> np.ndarray:
        return np.array([d.weekday() for d in self.days])


def build_series(frame, top_countries: int) -> list[Series]:
    """Series from rows (series, sale_date, net_revenue) of sql/forecast_series.sql: 'all' first, then
    the countries by net revenue. Every series is on the whole business's calendar."""
    import pandas as pd

    if frame.empty:
        return []
    df = frame.copy()
    df["sale_date"] = pd.to_datetime(df["sale_date"]).dt.date
    df["net_revenue"] = pd.to_numeric(df["net_revenue"], errors="coerce").fillna(0.0).astype(float)
    total = df[df["series"] == ALL_SERIES]
    if total.empty:
        return []
    first, last = min(total["sale_date"]), max(total["sale_date"])
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    traded = set(total["sale_date"])
    is_open = np.array([d in traded for d in days])
    order = (df[df["series"] != ALL_SERIES].groupby("series")["net_revenue"].sum()
             .sort_values(ascending=False, kind="stable"))
    names = [ALL_SERIES, *[str(c) for c in order.index[:top_countries]]]
    out = []
    for name in names:
        s = df[df["series"] == name].groupby("sale_date")["net_revenue"].sum()
        out.append(Series(name, days, np.array([float(s.get(d, 0.0)) for d in days]), is_open))
    return out


# ----------------------------------------------------------------------------- model
@dataclass(frozen=True)
class ModelConfig:
    trend: bool = True  # damped trend (Holt) or level only (simple exponential smoothing)
    cap_outliers: bool = True  # large one-off orders capped at the Tukey fence before smoothing

    @property
    def name(self) -> str:
        return ("damped trend" if self.trend else "level") + (", outliers capped" if self.cap_outliers else "")


CONFIGS: tuple[ModelConfig, ...] = (ModelConfig(True, True), ModelConfig(False, True), ModelConfig(True, False),
                                    ModelConfig(False, False))
_ALPHA, _BETA, _PHI = (g.ravel() for g in np.meshgrid(np.linspace(0.1, 0.9, 9), np.array([0.0, 0.05, 0.1, 0.2, 0.3]),
                                                       np.array([0.8, 0.9, 0.98]), indexing="ij"))


def weekday_profile(y: np.ndarray, is_open: np.ndarray, weekday: np.ndarray, t0: int, weeks: int) -> np.ndarray:
    """Mean revenue per weekday (0 = Monday) over the trading days of the ``weeks`` weeks ending at
    index ``t0``, normalised to a mean of 1 over the weekdays that trade (0 for the others)."""
    lo = max(0, t0 + 1 - 7 * weeks)
    o = is_open[lo:t0 + 1]
    s = np.bincount(weekday[lo:t0 + 1][o], weights=np.clip(y[lo:t0 + 1][o], 0, None), minlength=7)
    c = np.bincount(weekday[lo:t0 + 1][o], minlength=7)
    prof = np.where(c > 0, s / np.maximum(c, 1), 0.0)
    positive = prof[prof > 0]
    return prof / positive.mean() if len(positive) else np.where(c > 0, 1.0, 0.0)


def _smooth(levels: np.ndarray, horizon_weeks: int, trend: bool) -> np.ndarray:
    """Exponential smoothing (damped Holt, or level only) of weekly levels, its parameters chosen from a
    grid by the one-week-ahead absolute errors on ``levels``; the next ``horizon_weeks`` levels."""
    beta = _BETA if trend else np.zeros_like(_BETA)
    level = np.full(len(_ALPHA), levels[0])
    slope = np.zeros(len(_ALPHA))
    err = np.zeros(len(_ALPHA))
    for v in levels[1:]:
        pred = level + _PHI * slope
        err += np.abs(v - pred)
        previous = level
        level = _ALPHA * v + (1 - _ALPHA) * pred
        slope = beta * (level - previous) + (1 - beta) * _PHI * slope
    b = int(np.argmin(err))
    damp = np.cumsum(_PHI[b] ** np.arange(1, horizon_weeks + 1)) if trend else np.zeros(horizon_weeks)
    return np.maximum(level[b] + damp * slope[b], 0.0)


def forecast_point(series: Series, t0: int, horizon: int, future_open: np.ndarray, cfg: ModelConfig,
                   profile_weeks: int) -> np.ndarray:
    """The model's forecast of the ``horizon`` days after index ``t0`` (0 where ``future_open`` is False)."""
    y, o, wd = series.y[:t0 + 1], series.open[:t0 + 1], series.weekday[:t0 + 1]
    prof = weekday_profile(y, o, wd, t0, profile_weeks)
    weight = prof[wd]
    if cfg.cap_outliers:
        ratio = np.where(o & (weight > 0), y / np.where(weight > 0, weight, 1.0), np.nan)
        recent = ratio[max(0, t0 + 1 - 7 * 26):]
        recent = recent[np.isfinite(recent) & (recent > 0)]  # days with revenue: a lumpy series keeps its orders
        if len(recent) >= 8:
            q1, q3 = np.percentile(recent, [25, 75])
            cap = q3 + 1.5 * (q3 - q1)
            y = np.where(np.isfinite(ratio) & (ratio > cap), cap * weight, y)
    blocks = (t0 + 1) // 7
    levels = []
    for k in range(blocks, 0, -1):
        lo = t0 + 1 - 7 * k
        w = (weight[lo:lo + 7] * o[lo:lo + 7]).sum()
        if w > 0:
            levels.append((y[lo:lo + 7] * o[lo:lo + 7]).sum() / w)
    if not levels:
        return np.zeros(horizon)
    future = _smooth(np.array(levels), (horizon + 6) // 7, cfg.trend)
    start = series.days[t0] + timedelta(days=1)
    fwd = np.array([(start + timedelta(days=i)).weekday() for i in range(horizon)])
    return np.where(future_open, future[np.arange(horizon) // 7] * prof[fwd], 0.0)


def seasonal_naive(series: Series, t0: int, horizon: int) -> np.ndarray:
    """The same weekday in the last observed week (the last observed week, repeated)."""
    return np.array([series.y[t0 - 6 + (i % 7)] for i in range(horizon)])


def moving_average(series: Series, t0: int, horizon: int, weeks: int = 4) -> np.ndarray:
    """The mean of the same weekday over the last ``weeks`` observed weeks."""
    return np.array([np.mean([series.y[t0 - 6 + (i % 7) - 7 * k] for k in range(weeks)]) for i in range(horizon)])


def _future_open(series: Series, t0: int, horizon: int, traded: set, profile_weeks: int) -> np.ndarray:
    start = series.days[t0]
    days = [start + timedelta(days=i + 1) for i in range(horizon)]
    return ~closed_days(days, {d for d in traded if d <= start}, start, profile_weeks)


def wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    den = float(np.abs(actual).sum())
    return float(np.abs(actual - forecast).sum() / den) if den > 0 else float("nan")


# ----------------------------------------------------------------------------- backtest
@dataclass
class Backtest:
    """Rows of a rolling-origin backtest of one series: origin index, target index, actual, model,
    seasonal naive and moving average forecasts (one-week horizon)."""

    origin: np.ndarray
    target: np.ndarray
    actual: np.ndarray
    model: np.ndarray
    seasonal_naive: np.ndarray
    moving_average: np.ndarray

    def wapes(self) -> dict:
        return {"model": wape(self.actual, self.model), "seasonal_naive": wape(self.actual, self.seasonal_naive),
                "moving_average": wape(self.actual, self.moving_average)}

    def weekly_wapes(self) -> dict:
        """WAPE of the weekly totals (each origin's 7 days summed)."""
        weeks = sorted(set(self.origin.tolist()))

        def total(v: np.ndarray) -> np.ndarray:
            return np.array([v[self.origin == w].sum() for w in weeks])

        a = total(self.actual)
        return {"model": wape(a, total(self.model)), "seasonal_naive": wape(a, total(self.seasonal_naive)),
                "moving_average": wape(a, total(self.moving_average))}


def origins(n_days: int, first_week_back: int, weeks: int) -> list[int]:
    """Origin indices (last observed day) of ``weeks`` consecutive weekly origins, the first one
    ``first_week_back`` weeks before the last day, each followed by 7 observed days."""
    return [n_days - 1 - 7 * k for k in range(first_week_back, first_week_back - weeks, -1)]


def backtest(series: Series, origin_idx: list[int], cfg: ModelConfig, traded: set, profile_weeks: int) -> Backtest:
    rows: dict[str, list] = {k: [] for k in ("origin", "target", "actual", "model", "seasonal_naive", "moving_average")}
    for t0 in origin_idx:
        fo = _future_open(series, t0, 7, traded, profile_weeks)
        rows["origin"].append(np.full(7, t0))
        rows["target"].append(np.arange(t0 + 1, t0 + 8))
        rows["actual"].append(series.y[t0 + 1:t0 + 8])
        rows["model"].append(forecast_point(series, t0, 7, fo, cfg, profile_weeks))
        rows["seasonal_naive"].append(seasonal_naive(series, t0, 7))
        rows["moving_average"].append(moving_average(series, t0, 7))
    return Backtest(**{k: np.concatenate(v) if v else np.zeros(0) for k, v in rows.items()})


def mase(bt: Backtest, series: Series) -> float:
    """Mean |model error| over the backtest / mean |y(t) - y(t-7)| of the history before it."""
    first = int(bt.origin.min())
    y = series.y[:first + 1]
    scale = float(np.mean(np.abs(y[7:] - y[:-7]))) if len(y) > 7 else float("nan")
    return float(np.mean(np.abs(bt.actual - bt.model)) / scale) if scale and scale > 0 else float("nan")


def weekly_difference_ci(bt: Backtest, level: float = CONFIDENCE, samples: int = BOOTSTRAP_SAMPLES) -> tuple[float, float, float]:
    """D = WAPE(seasonal naive) - WAPE(model) and its interval, resampling the backtest's weeks."""
    from ecommerce_platform.ml.metrics import bootstrap_ratio_ci

    weeks = sorted(set(bt.origin.tolist()))
    num = [float(np.abs(bt.actual - bt.seasonal_naive)[bt.origin == w].sum()
                 - np.abs(bt.actual - bt.model)[bt.origin == w].sum()) for w in weeks]
    den = [float(np.abs(bt.actual)[bt.origin == w].sum()) for w in weeks]
    return bootstrap_ratio_ci(num, den, level, samples)


def gate(total: Backtest, countries: dict[str, Backtest]) -> tuple[str, list[str], dict]:
    """(verdict, reasons, figures): the model must beat seasonal naive on the total (the interval of
    D = WAPE(seasonal naive) - WAPE(model) above 0), and be confidently worse on no country (a country's
    interval entirely below 0 fails the run; a lumpy country's noise does not)."""
    from ecommerce_platform.ml.metrics import FAIL, PASS, decide

    d, lo, hi = weekly_difference_ci(total)
    verdict = decide(lo, hi)
    w = total.wapes()
    reasons = []
    if verdict != PASS:
        reasons.append(f"total: WAPE {w['model']:.4f} vs seasonal naive {w['seasonal_naive']:.4f}: the "
                       f"{CONFIDENCE:.0%} interval of the difference [{lo:.4f}, {hi:.4f}] is "
                       + ("below 0" if verdict == FAIL else "not above 0 (too few backtest weeks to decide)"))
    for name, bt in countries.items():
        _, c_lo, c_hi = weekly_difference_ci(bt)
        if decide(c_lo, c_hi) == FAIL:
            cw = bt.wapes()
            reasons.append(f"{name}: WAPE {cw['model']:.4f} > seasonal naive {cw['seasonal_naive']:.4f} (interval of "
                           f"the difference [{c_lo:.4f}, {c_hi:.4f}] below 0)")
            verdict = FAIL
    return verdict, reasons, {"wape_difference": d, "wape_difference_lo": lo, "wape_difference_hi": hi}


# ----------------------------------------------------------------------------- intervals
def _ratio_quantiles(series: Series, cal_origins: list[int], cfg: ModelConfig, traded: set, s: ForecastSettings,
                     horizon_days: int) -> dict:
    """Quantiles of actual / forecast at each horizon (day index; weekly totals by week index) over
    forecasts made from ``cal_origins`` (targets after the last origin day are not used)."""
    a = (1 - s.interval) / 2
    daily: dict[int, list] = {}
    weekly: dict[int, list] = {}
    last = max(cal_origins) + 7 if cal_origins else 0
    for t0 in cal_origins:
        h = min(horizon_days, last - t0, len(series.y) - 1 - t0)
        if h <= 0:
            continue
        fo = _future_open(series, t0, h, traded, s.profile_weeks)
        f = forecast_point(series, t0, h, fo, cfg, s.profile_weeks)
        act = series.y[t0 + 1:t0 + 1 + h]
        for i in range(h):
            if fo[i] and f[i] > 0:
                daily.setdefault(i // 7, []).append(act[i] / f[i])
        for wk in range(h // 7):
            fw = f[7 * wk:7 * wk + 7].sum()
            if fw > 0:
                weekly.setdefault(wk, []).append(act[7 * wk:7 * wk + 7].sum() / fw)

    def quantiles(pool: dict[int, list]) -> dict[int, tuple[float, float]]:
        out, seen = {}, []
        for wk in range((horizon_days + 6) // 7):
            seen = seen + pool.get(wk, [])  # pooled with the shorter horizons: wide enough, never narrower
            vals = pool.get(wk, []) if len(pool.get(wk, [])) >= 20 else seen
            out[wk] = (float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a))) if vals else (0.0, 2.0)
        return out

    return {"day": quantiles(daily), "week": quantiles(weekly)}


def coverage(bt: Backtest, q: dict) -> float:
    """Share of the backtest's trading days (model forecast > 0) whose actual is in the interval."""
    keep = bt.model > 0
    lo, hi = q["day"][0]
    return float(np.mean((bt.actual[keep] >= lo * bt.model[keep]) & (bt.actual[keep] <= hi * bt.model[keep]))) \
        if keep.any() else float("nan")


# ----------------------------------------------------------------------------- a run
@dataclass
class SeriesResult:
    name: str
    config: ModelConfig
    validation: dict  # config name -> validation WAPE
    test: Backtest
    wapes: dict
    mase: float
    coverage: float
    coverage_weekly: float
    quantiles: dict


@dataclass
class ForecastRun:
    results: list[SeriesResult]
    forecast: object  # DataFrame: FORECAST_COLUMNS
    history: object  # DataFrame: series, sale_date, net_revenue (for the plot)
    verdict: str
    reasons: list[str]
    figures: dict
    origin: date
    train_seconds: float
    eval_seconds: float
    run_id: str = field(default_factory=runs.new_run_id)

    @property
    def total(self) -> SeriesResult:
        return self.results[0]

    def summary(self) -> dict:
        t = self.total
        return {
            "run_id": self.run_id, "origin": self.origin.isoformat(), "verdict": self.verdict,
            "gate_failures": self.reasons, "figures": self.figures,
            "wape": t.wapes["model"], "wape_seasonal_naive": t.wapes["seasonal_naive"],
            "wape_moving_average": t.wapes["moving_average"], "mase": t.mase, "interval_coverage": t.coverage,
            "series": [{"series": r.name, "config": r.config.name, **{f"wape_{k}" if k != "model" else "wape": v
                                                                        for k, v in r.wapes.items()},
                        **{f"weekly_wape_{k}" if k != "model" else "weekly_wape": v
                           for k, v in r.test.weekly_wapes().items()},
                        "mase": r.mase, "interval_coverage": r.coverage, "interval_coverage_weekly": r.coverage_weekly,
                        "validation": r.validation} for r in self.results],
            "train_seconds": self.train_seconds, "eval_seconds": self.eval_seconds,
        }


def data_problems(series: list[Series], s: ForecastSettings) -> dict[str, dict]:
    missing: dict[str, dict] = {}
    if not series:
        runs.need(missing, "days of net revenue (daily_sales)", 1, 0)
        return missing
    runs.need(missing, f"weeks of daily net revenue (profile {s.profile_weeks} + levels {MIN_LEVEL_WEEKS} + "
              f"validation {s.validation_weeks} + backtest {s.backtest_weeks})", s.min_weeks, len(series[0].days) // 7)
    return missing


def _forecast_rows(series: Series, cfg: ModelConfig, q: dict, traded: set, s: ForecastSettings, run_id: str) -> list[dict]:
    t0 = len(series.days) - 1
    h = 7 * s.horizon_weeks
    fo = _future_open(series, t0, h, traded, s.profile_weeks)
    f = forecast_point(series, t0, h, fo, cfg, s.profile_weeks)
    origin = series.days[t0]
    rows = []
    for i in range(h):
        lo, hi = q["day"][i // 7]
        d = origin + timedelta(days=i + 1)
        rows.append({"series": series.name, "granularity": "day", "period_start": d, "period_end": d,
                     "horizon": i + 1, "trading_days": int(fo[i]), "forecast": f[i], "lower": lo * f[i],
                     "upper": hi * f[i]})
    for wk in range(s.horizon_weeks):
        lo, hi = q["week"][wk]
        fw = float(f[7 * wk:7 * wk + 7].sum())
        rows.append({"series": series.name, "granularity": "week", "period_start": origin + timedelta(days=7 * wk + 1),
                     "period_end": origin + timedelta(days=7 * wk + 7), "horizon": wk + 1,
                     "trading_days": int(fo[7 * wk:7 * wk + 7].sum()), "forecast": fw, "lower": lo * fw, "upper": hi * fw})
    for r in rows:
        r.update({"interval": s.interval, "origin": origin, "run_id": run_id})
        for k in ("forecast", "lower", "upper"):
            r[k] = round(float(r[k]), 2)
    return rows


def train_and_evaluate(frame, settings: ForecastSettings | None = None) -> ForecastRun:
    """``frame``: rows (series, sale_date, net_revenue) of sql/forecast_series.sql. Raises
    runs.InsufficientData when the history is too short for an honest backtest."""
    import pandas as pd

    s = settings or ForecastSettings()
    series = build_series(frame, s.top_countries)
    missing = data_problems(series, s)
    if missing:
        raise runs.InsufficientData(missing)
    traded = {d for d, o in zip(series[0].days, series[0].open) if o}
    n = len(series[0].days)
    test_origins = origins(n, s.backtest_weeks, s.backtest_weeks)
    val_origins = origins(n, s.backtest_weeks + s.validation_weeks, s.validation_weeks)
    cal_all = list(range(n - 1 - 7 * ((n - 1 - 7 * (s.profile_weeks + MIN_LEVEL_WEEKS)) // 7), n - 7, 7))
    run_id = runs.new_run_id()
    results, rows = [], []
    t_train = t_eval = 0.0
    for ser in series:
        t1 = time.perf_counter()
        validation = {cfg.name: backtest(ser, val_origins, cfg, traded, s.profile_weeks).wapes()["model"]
                      for cfg in CONFIGS}
        cfg = min(CONFIGS, key=lambda c: (np.nan_to_num(validation[c.name], nan=np.inf), CONFIGS.index(c)))
        test = backtest(ser, test_origins, cfg, traded, s.profile_weeks)
        # intervals: for the coverage on the test, from origins before it only; for serving, from all
        q_test = _ratio_quantiles(ser, [o for o in cal_all if o + 7 <= test_origins[0]], cfg, traded, s, 7)
        cov = coverage(test, q_test)
        lo_w, hi_w = q_test["week"][0]
        weeks = [(test.actual[test.origin == o].sum(), test.model[test.origin == o].sum()) for o in test_origins]
        cov_w = float(np.mean([lo_w * f <= a <= hi_w * f for a, f in weeks if f > 0])) if weeks else float("nan")
        t_eval += time.perf_counter() - t1
        t2 = time.perf_counter()
        q = _ratio_quantiles(ser, cal_all, cfg, traded, s, 7 * s.horizon_weeks)
        rows += _forecast_rows(ser, cfg, q, traded, s, run_id)
        t_train += time.perf_counter() - t2
        results.append(SeriesResult(ser.name, cfg, validation, test, test.wapes(), mase(test, ser), cov, cov_w, q))
    verdict, reasons, figures = gate(results[0].test, {r.name: r.test for r in results[1:]})
    forecast = pd.DataFrame(rows)[[c for c, _, _ in FORECAST_COLUMNS]]
    history = pd.DataFrame([{"series": ser.name, "sale_date": d, "net_revenue": v}
                            for ser in series for d, v in zip(ser.days, ser.y)])
    return ForecastRun(results, forecast, history, verdict, reasons, figures, series[0].days[-1],
                       round(t_train, 3), round(t_eval, 3), run_id)


def backtest_frame(run: ForecastRun):
    """The test backtest of every series as rows (what the check recounts from)."""
    import pandas as pd

    frames = []
    for r in run.results:
        days = np.array(run.history[run.history["series"] == r.name]["sale_date"].tolist())
        frames.append(pd.DataFrame({
            "series": r.name, "origin": days[r.test.origin], "sale_date": days[r.test.target],
            "actual": r.test.actual, "forecast": np.round(r.test.model, 2),
            "seasonal_naive": r.test.seasonal_naive, "moving_average": np.round(r.test.moving_average, 2),
        }))
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- plot, lake I/O
def plot_png(run: ForecastRun, history_weeks: int = 26) -> bytes:
    """Weekly net revenue of each series: the last ``history_weeks`` weeks (7-day blocks ending at the
    origin), the weekly forecast and its interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.name for r in run.results]
    fig, axes = plt.subplots(len(names), 1, figsize=(9, 2.3 * len(names)), dpi=80, squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        h = run.history[run.history["series"] == name]
        y = h["net_revenue"].to_numpy(float)
        days = h["sale_date"].tolist()
        weeks = min(history_weeks, len(y) // 7)
        ends = [len(y) - 1 - 7 * k for k in range(weeks - 1, -1, -1)]
        ax.plot([days[e] for e in ends], [y[e - 6:e + 1].sum() for e in ends], color="black", lw=1.2, label="actual")
        f = run.forecast[(run.forecast["series"] == name) & (run.forecast["granularity"] == "week")]
        ax.plot(f["period_end"], f["forecast"], color="tab:blue", lw=1.5, label="forecast")
        ax.fill_between(f["period_end"], f["lower"], f["upper"], color="tab:blue", alpha=0.2,
                        label=f"{run.forecast['interval'].iloc[0]:.0%} interval")
        ax.set_title(f"{name}: weekly net revenue (GBP)", fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _parquet(df) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def save_run(lake, run: ForecastRun, prefix: str) -> None:  # noqa: ANN001
    """The run's forecast, backtest, plot and summary under ``prefix``, replacing what was there."""
    staging = lake.staging_prefix(prefix)
    lake.put_bytes(f"{staging}/forecast.parquet", _parquet(run.forecast))
    lake.put_bytes(f"{staging}/backtest.parquet", _parquet(backtest_frame(run)))
    lake.put_bytes(f"{staging}/forecast.png", plot_png(run))
    lake.put_text(f"{staging}/model.json", json.dumps(runs.json_safe(
        {**run.summary(), "format": "sales-forecast/1", "trained_at": runs.now_iso()}), indent=2))
    lake.publish_prefix(staging, prefix)


def catalog_table(warehouse) -> None:  # noqa: ANN001 - Warehouse
    """The table ``sales_forecast`` over the served forecast (an empty table before any)."""
    warehouse.register_table(FORECAST_TABLE, TABLE_PREFIX, FORECAST_COLUMNS)


def serve(warehouse, run: ForecastRun) -> None:  # noqa: ANN001
    lake = warehouse.lake
    save_run(lake, run, CURRENT_PREFIX)
    staging = lake.staging_prefix(TABLE_PREFIX)
    lake.put_bytes(f"{staging}/part-0.parquet", _parquet(run.forecast))
    lake.publish_prefix(staging, TABLE_PREFIX)
    catalog_table(warehouse)


def served_run_id(lake) -> str | None:  # noqa: ANN001
    key = f"{CURRENT_PREFIX}/model.json"
    return json.loads(lake.get_text(key)).get("run_id") if lake.exists(key) else None


def run_and_publish(warehouse, frame, settings: ForecastSettings) -> tuple[dict, ForecastRun | None]:  # noqa: ANN001
    """Train, evaluate and publish one run: the candidate always, the served forecast (files and table)
    only when the gate passes. Records the run (runs.write_record) and returns (record, run or None)."""
    lake = warehouse.lake
    try:
        run = train_and_evaluate(frame, settings)
    except runs.InsufficientData as exc:
        catalog_table(warehouse)
        record = runs.record_insufficient(lake, MODEL_PREFIX, exc, served_run_id(lake), settings=settings.__dict__)
        return record, None
    save_run(lake, run, CANDIDATE_PREFIX)
    status = runs.status_for(run.verdict)
    if status == runs.SERVED:
        serve(warehouse, run)
    else:
        catalog_table(warehouse)
    record = {**run.summary(), "status": status, "finished_at": runs.now_iso(),
              "served_run_id": served_run_id(lake), "settings": settings.__dict__}
    runs.write_record(lake, MODEL_PREFIX, record)
    return record, run


def outputs_exist(lake) -> bool:  # noqa: ANN001
    """The run record and, when it says a model is served, the served files."""
    return runs.outputs_exist(lake, MODEL_PREFIX, served_run_id)


def series_sql(top_countries: int) -> str:
    from ecommerce_platform.resources.sql_dialect import read_sql, render

    return render(read_sql("ecommerce_platform.ml", SQL_FILE), top_countries=int(top_countries))


# ----------------------------------------------------------------------------- the check's recount
def recount(warehouse, record: dict) -> dict:  # noqa: ANN001
    """The gate evaluated again from what was published: the actual daily net revenue read again from
    the view ``daily_sales`` (and ``daily_sales_by_country``), seasonal naive recomputed from it, the
    model's backtest forecasts read from the run's published backtest (``candidate/backtest.parquet``)."""
    import pandas as pd

    lake = warehouse.lake
    key = f"{CANDIDATE_PREFIX}/backtest.parquet"
    if not lake.exists(key):
        return {"problem": f"no backtest published at {lake.uri(key)}"}
    bt = pd.read_parquet(io.BytesIO(lake.get_bytes(key)))
    frame = warehouse.query_df(series_sql(int(record["settings"]["top_countries"])))
    frame["sale_date"] = pd.to_datetime(frame["sale_date"]).dt.date
    out: dict = {"series": {}}
    parts: dict[str, Backtest] = {}
    for name, rows in bt.groupby("series", sort=False):
        y = frame[frame["series"] == name].groupby("sale_date")["net_revenue"].sum().astype(float)
        actual = np.array([float(y.get(d, 0.0)) for d in rows["sale_date"]])
        naive = np.array([float(y.get(d - timedelta(days=7), 0.0)) for d in rows["sale_date"]])
        origin_idx = pd.factorize(rows["origin"])[0]
        parts[name] = Backtest(origin_idx, np.arange(len(rows)), actual, rows["forecast"].to_numpy(float), naive,
                               rows["moving_average"].to_numpy(float))
        out["series"][name] = {"wape": wape(actual, parts[name].model), "wape_seasonal_naive": wape(actual, naive)}
    if ALL_SERIES not in parts:
        return {**out, "problem": "the backtest has no row of the total"}
    verdict, reasons, figures = gate(parts[ALL_SERIES], {k: v for k, v in parts.items() if k != ALL_SERIES})
    return {**out, "verdict": verdict, "reasons": reasons, **figures}


# ----------------------------------------------------------------------------- serving (CLI)
def load_served(lake):  # noqa: ANN001, ANN201 - DataFrame of the served forecast
    import pandas as pd

    key = f"{CURRENT_PREFIX}/forecast.parquet"
    if not lake.exists(key):
        raise FileNotFoundError(f"no sales forecast at {lake.uri(CURRENT_PREFIX)}: materialize `sales_forecast` "
                                "first (a forecast is served only when it beats seasonal naive)")
    return pd.read_parquet(io.BytesIO(lake.get_bytes(key)))
