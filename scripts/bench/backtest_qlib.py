"""Times pyqlib's daily backtest on the inputs `qtask bench backtest --keep DIR` wrote.

    qtask bench backtest --keep /tmp/bb
    /root/qlib-venv/bin/python scripts/bench/backtest_qlib.py --dir /tmp/bb \
        --start 2018-01-26 --end 2020-01-01 --topk 10 --n-drop 5

The timed region is what `qtask bench backtest` times: `qlib.backtest.backtest(...)` with
TopkDropoutStrategy and a daily SimulatorExecutor (exchange data loading included), after
`qlib.init` and reading the prediction. Prints seconds per repetition, best and mean.
"""

import argparse
import time

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--start", required=True)
    ap.add_argument("--end", required=True)
    ap.add_argument("--topk", type=int, default=10)
    ap.add_argument("--n-drop", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import qlib
    from qlib.backtest import backtest
    from qlib.contrib.strategy.signal_strategy import TopkDropoutStrategy

    qlib.init(provider_uri=f"{args.dir}/data", region="cn", kernels=1)
    pred = pd.read_parquet(f"{args.dir}/pred.parquet")
    times = []
    for _ in range(args.repeat):
        strategy = TopkDropoutStrategy(signal=pred, topk=args.topk, n_drop=args.n_drop)
        executor = {"class": "SimulatorExecutor", "module_path": "qlib.backtest.executor",
                    "kwargs": {"time_per_step": "day", "generate_portfolio_metrics": True}}
        t = time.perf_counter()
        portfolio, _ = backtest(
            start_time=args.start, end_time=args.end, strategy=strategy, executor=executor,
            benchmark="SH000300", account=100_000_000,
            exchange_kwargs={"limit_threshold": 0.095, "deal_price": "close",
                             "open_cost": 0.0005, "close_cost": 0.0015, "min_cost": 5},
        )
        times.append(time.perf_counter() - t)
        report = portfolio["1day"][0]
        print(f"qlib backtest: {times[-1]:.3f} s, {len(report)} days, "
              f"final account {report['account'].iloc[-1]:.2f}", flush=True)
    print(f"qlib best {min(times):.3f} s, mean {sum(times) / len(times):.3f} s")


if __name__ == "__main__":
    main()
