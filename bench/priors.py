"""Test NLL of the README's digits model under each prior: standard normal, VampPrior, mixture of Gaussians.

    python bench/priors.py                 # writes bench/results/priors.json; python bench/render.py renders it
    python bench/priors.py --quick         # a smoke run: 3 epochs, k = 20, one seed

Each prior trains the README's bodies, `tfvae.mlp_vae(64, (128, 128), 8,
likelihood="bernoulli", prior=...)`, on the binarized digits' training split
for 150 epochs at batch 64 with the default optimizer (Adam at 1e-3), as
`tfvae train` does, then `tfvae.evaluate` reports its test NLL with k = 1000
importance samples (the model's own prior in the weights), the test ELBO and
the active units. Every seed seeds the weights and the sampling; the data
split is the same for all. Speeds are not measured here.
"""

import argparse
import os
import sys
import time

import numpy as np

import render  # bench/render.py: the results contract

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

#: prior name -> (label in the table, the `prior` argument of `tfvae.mlp_vae`).
PRIORS = {
    "standard_normal": "N(0, I)",
    "vamp": "VampPrior, K = 50 pseudo-inputs",
    "mixture": "mixture of 10 Gaussians",
}


def run_one(prior, seed, epochs, num_samples):
    import keras

    import tfvae

    (x_train, _), (x_test, _) = tfvae.datasets.load("digits", binarize=True, seed=0)
    keras.utils.set_random_seed(seed)
    model = tfvae.mlp_vae(64, (128, 128), 8, likelihood="bernoulli", prior=prior)
    model.compile()
    model.fit(x_train, epochs=epochs, batch_size=64, verbose=0)
    results = tfvae.evaluate(model, x_test, importance_samples=num_samples, seed=seed)
    return {"prior": prior, "seed": seed, "nll": results["nll"], "nll_standard_error": results["nll_standard_error"],
            "elbo": results["elbo"], "kl": results["kl"], "active_units": results["active_units"]}


def summarize(runs, epochs, num_samples):
    rows = []
    means = {}
    for prior, label in PRIORS.items():
        mine = [run for run in runs if run["prior"] == prior]
        if not mine:
            continue
        nll = np.array([run["nll"] for run in mine])
        means[prior] = float(nll.mean())
        spread = f" +- {nll.std(ddof=1):.2f}" if len(nll) > 1 else f" +- {mine[0]['nll_standard_error']:.2f} (s.e.)"
        rows.append([label, len(mine), f"{nll.mean():.2f}{spread}", ", ".join(f"{value:.2f}" for value in nll),
                     f"{np.mean([run['elbo'] for run in mine]):.2f}", f"{np.mean([run['kl'] for run in mine]):.2f}",
                     f"{np.mean([run['active_units'] for run in mine]):.1f}"])
    seeds = max(row[1] for row in rows)
    text = (f"Test NLL in nats per digit (k = {num_samples} importance samples, lower is better) after {epochs} "
            f"epochs; mean over {seeds} seed{'s' if seeds > 1 else ''}"
            f"{' +- their standard deviation' if seeds > 1 else ' +- the standard error over test digits'}.")
    if "vamp" in means and "standard_normal" in means:
        gap = means["vamp"] - means["standard_normal"]
        text += (f" The VampPrior's NLL is {abs(gap):.2f} nats {'below' if gap < 0 else 'above'} the standard "
                 "prior's.")
    table = {"columns": ["prior", "seeds", "test NLL", "per seed", "test ELBO", "KL", "active units of 8"],
             "rows": rows}
    method = __doc__.split("\n\n", 2)[2].strip()
    return [{"heading": "Method", "text": method}, {"heading": "Test NLL by prior", "text": text, "table": table}]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 epochs, k = 20, one seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--priors", default=",".join(PRIORS), help="comma-separated subset of " + ", ".join(PRIORS))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "priors.json"))
    args = parser.parse_args(argv)
    epochs, num_samples, seeds = (3, 20, 1) if args.quick else (150, 1000, args.seeds)
    priors = args.priors.split(",")
    for prior in priors:
        if prior not in PRIORS:
            parser.error(f"--priors: unknown prior {prior!r}; expected some of {', '.join(PRIORS)}")
    start = time.perf_counter()
    runs = []
    for seed in range(seeds):  # seeds outermost: an interrupted run still compares the priors
        for prior in priors:
            runs.append(run_one(prior, seed, epochs, num_samples))
            print(f"[{time.perf_counter() - start:5.0f}s] {prior} seed {seed}: NLL {runs[-1]['nll']:.2f}", flush=True)
    command = "python bench/priors.py" + (" --quick" if args.quick else "")
    if not args.quick and seeds != 3:
        command += f" --seeds {seeds}"
    if args.priors != ",".join(PRIORS):
        command += f" --priors {args.priors}"
    result = {
        **render.header("Priors: test NLL on digits", command),
        "sections": summarize(runs, epochs, num_samples),
        "runs": runs,
    }
    render.write_result(result, args.out)


if __name__ == "__main__":
    main()
