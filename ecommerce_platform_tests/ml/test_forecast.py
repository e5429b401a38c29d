"""Unit tests of the sales forecast on generated series: the trading calendar (bank holidays of England &
Wales checked against the published lists, Saturdays and the Christmas shutdown learnt from the data),
the backtest's baselines and WAPE recomputed here with plain pandas, the served forecast (days, weeks,
intervals, closed days), too little history, and the `ecommerce forecast` command on a served run."""

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ecommerce_platform.ml import forecast as fc
from ecommerce_platform.ml import runs
from ecommerce_platform_tests.ml.conftest import sales_days, steady_sales

# gov.uk's bank holidays of England and Wales
GOV_UK = {
    2010: ["2010-01-01", "2010-04-02", "2010-04-05", "2010-05-03", "2010-05-31", "2010-08-30", "2010-12-27", "2010-12-28"],
    2011: ["2011-01-03", "2011-04-22", "2011-04-25", "2011-04-29", "2011-05-02", "2011-05-30", "2011-08-29",
           "2011-12-26", "2011-12-27"],
    2012: ["2012-01-02", "2012-04-06", "2012-04-09", "2012-05-07", "2012-06-04", "2012-06-05", "2012-08-27",
           "2012-12-25", "2012-12-26"],
    2020: ["2020-01-01", "2020-04-10", "2020-04-13", "2020-05-08", "2020-05-25", "2020-08-31", "2020-12-25", "2020-12-28"],
    2022: ["2022-01-03", "2022-04-15", "2022-04-18", "2022-05-02", "2022-06-02", "2022-06-03", "2022-08-29",
           "2022-09-19", "2022-12-26", "2022-12-27"],
}
EASTER = {2010: "2010-04-04", 2011: "2011-04-24", 2012: "2012-04-08", 2020: "2020-04-12", 2022: "2022-04-17"}


@pytest.mark.parametrize("year", sorted(GOV_UK))
def test_bank_holidays_are_gov_uk_s_plus_easter_sunday_and_christmas_day(year):
    expected = {date.fromisoformat(d) for d in GOV_UK[year]}
    expected |= {date.fromisoformat(EASTER[year]), date(year, 12, 25)}
    assert fc.bank_holidays(year) == expected


def test_closed_days_learn_saturdays_and_last_year_s_christmas_shutdown():
    history = pd.date_range("2010-12-01", "2011-12-09").date
    shutdown = {date(2010, 12, 24)} | {date(2010, 12, d) for d in range(26, 32)} | {date(2011, 1, 2), date(2011, 1, 3)}
    traded = {d for d in history if d.weekday() != 5 and d not in shutdown and d not in fc.bank_holidays(d.year)}
    future = [date(2011, 12, 10) + timedelta(days=i) for i in range(35)]
    closed = dict(zip(future, fc.closed_days(future, traded, date(2011, 12, 9), 8)))
    assert all(closed[d] for d in future if d.weekday() == 5)  # no trading on Saturdays
    assert closed[date(2011, 12, 25)] and closed[date(2011, 12, 26)] and closed[date(2011, 12, 27)]
    assert closed[date(2011, 12, 28)] and closed[date(2011, 12, 30)]  # the shutdown kept a year before
    assert closed[date(2012, 1, 2)] and closed[date(2012, 1, 3)]
    assert not closed[date(2011, 12, 11)] and not closed[date(2011, 12, 23)] and not closed[date(2012, 1, 4)]


def _frame(total: pd.DataFrame, countries: dict | None = None) -> pd.DataFrame:
    parts = [total.assign(series="all")] + [df.assign(series=c) for c, df in (countries or {}).items()]
    return pd.concat(parts, ignore_index=True)


def test_backtest_baselines_and_wape_match_a_plain_pandas_recount():
    s = fc.ForecastSettings(top_countries=1)
    total = steady_sales()
    run = fc.train_and_evaluate(_frame(total, {"France": steady_sales(seed=2, level=2000.0, noise=0.5)}), s)
    assert [r.name for r in run.results] == ["all", "France"]
    y = total.set_index("sale_date")["net_revenue"]
    end = pd.Timestamp(max(y.index))
    test_days = [d.date() for d in pd.date_range(end - pd.Timedelta(days=7 * s.backtest_weeks - 1), end)]
    actual = np.array([y.get(d, 0.0) for d in test_days])
    naive = np.array([y.get(d - timedelta(days=7), 0.0) for d in test_days])
    ma = np.array([np.mean([y.get(d - timedelta(days=7 * k), 0.0) for k in range(1, 5)]) for d in test_days])
    t = run.total
    assert t.wapes["seasonal_naive"] == pytest.approx(np.abs(actual - naive).sum() / np.abs(actual).sum())
    assert t.wapes["moving_average"] == pytest.approx(np.abs(actual - ma).sum() / np.abs(actual).sum())
    assert t.wapes["model"] == pytest.approx(np.abs(actual - t.test.model).sum() / np.abs(actual).sum())
    # MASE: the mean absolute error over the in-sample mean |y(t) - y(t-7)| before the backtest
    history = np.array([y.get(d.date(), 0.0) for d in pd.date_range(min(y.index), test_days[0] - timedelta(days=1))])
    scale = np.mean(np.abs(history[7:] - history[:-7]))
    assert t.mase == pytest.approx(np.mean(np.abs(actual - t.test.model)) / scale)
    # on independent noise around a weekday pattern the model beats last week's copy of the noise
    assert t.wapes["model"] < 0.85 * t.wapes["seasonal_naive"] and run.verdict == "pass"
    assert 0.5 <= t.coverage <= 1.0
    # the validation chose the configuration: every candidate was measured on the weeks before the test
    assert set(t.validation) == {c.name for c in fc.CONFIGS} and t.config.name in t.validation


def test_served_forecast_rows():
    s = fc.ForecastSettings(top_countries=0)
    run = fc.train_and_evaluate(_frame(steady_sales()), s)
    f = run.forecast
    days, weeks = f[f["granularity"] == "day"], f[f["granularity"] == "week"]
    assert len(days) == 7 * s.horizon_weeks and len(weeks) == s.horizon_weeks
    origin = max(sales_days(44))
    assert (f["origin"] == origin).all() and days["period_start"].min() == origin + timedelta(days=1)
    assert (days.loc[days["trading_days"] == 0, ["forecast", "lower", "upper"]] == 0).all().all()
    saturdays = days[[d.weekday() == 5 for d in days["period_start"]]]
    assert (saturdays["trading_days"] == 0).all()
    assert ((days["lower"] <= days["forecast"]) & (days["forecast"] <= days["upper"])).all()
    for _, w in weeks.iterrows():
        inside = days[(days["period_start"] >= w["period_start"]) & (days["period_start"] <= w["period_end"])]
        assert w["forecast"] == pytest.approx(inside["forecast"].sum(), abs=0.05)
        assert w["trading_days"] == inside["trading_days"].sum()
    assert set(f["run_id"]) == {run.run_id} and (f["interval"] == s.interval).all()
    assert fc.plot_png(run)[:8] == b"\x89PNG\r\n\x1a\n"


def test_too_short_a_history_says_what_is_missing():
    s = fc.ForecastSettings()
    short = steady_sales(weeks=20)
    with pytest.raises(runs.InsufficientData) as exc:
        fc.train_and_evaluate(_frame(short), s)
    (what, numbers), = exc.value.missing.items()
    span = (max(short["sale_date"]) - min(short["sale_date"])).days + 1  # first to last trading day
    assert what.startswith("weeks of daily net revenue") and numbers == {"needed": s.min_weeks, "found": span // 7}
    with pytest.raises(runs.InsufficientData):
        fc.train_and_evaluate(pd.DataFrame(columns=["series", "sale_date", "net_revenue"]), s)


def test_cli_forecast_reads_the_served_forecast(tmp_path):
    from ecommerce_platform.cli import main
    from ecommerce_platform.resources import build_resources
    from ecommerce_platform_tests.conftest import platform_environment

    with platform_environment(tmp_path / "data"):
        wh = build_resources()["warehouse"]
        run = fc.train_and_evaluate(_frame(steady_sales(), {"France": steady_sales(seed=2, level=2000.0, noise=0.5)}),
                                    fc.ForecastSettings(top_countries=1))
        runner = CliRunner()
        missing = runner.invoke(main, ["forecast"])
        assert missing.exit_code == 2 and "materialize `sales_forecast`" in missing.output
        fc.serve(wh, run)
        out = json.loads(runner.invoke(main, ["forecast", "--json"]).output)
        assert out["series"] == "all" and out["run_id"] == run.run_id and len(out["rows"]) == 8
        weeks = run.forecast[(run.forecast["series"] == "all") & (run.forecast["granularity"] == "week")]
        assert [r["forecast"] for r in out["rows"]] == pytest.approx(weeks["forecast"].tolist())
        france = json.loads(runner.invoke(main, ["forecast", "--country", "france", "--weeks", "2", "--json"]).output)
        assert france["series"] == "France" and [r["horizon"] for r in france["rows"]] == [1, 2]
        daily = json.loads(runner.invoke(main, ["forecast", "--daily", "--weeks", "1", "--json"]).output)
        assert len(daily["rows"]) == 7 and daily["granularity"] == "day"
        text = runner.invoke(main, ["forecast", "--daily", "--weeks", "1"])
        assert text.exit_code == 0 and "closed" in text.output and "80% interval" in text.output
        bad = runner.invoke(main, ["forecast", "--country", "Atlantis"])
        assert bad.exit_code == 2 and "no forecast for 'Atlantis'" in bad.output and "France" in bad.output
        # the table the asset publishes holds the same rows
        assert int(wh.query_df("SELECT count(*) AS n FROM sales_forecast").iloc[0]["n"]) == len(run.forecast)
