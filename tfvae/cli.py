"""The `tfvae` command: thin argument parsing over `tfvae.run`.

    tfvae train [--data digits] [--epochs 150] ... [--strategy mirrored] [--resume]
    tfvae evaluate RUN_DIR [--num-samples 1000]
"""

import argparse
import os
import sys

from tfvae import distribute, resumable, run
from tfvae.evaluate import evaluate_run, format_evaluation


def _hidden(text):
    try:
        return tuple(int(units) for units in text.split(",") if units.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 128,128, got {text!r}") from None


class UsageError(Exception):
    """A bad command line, reported as one line like every other error."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser():
    parser = _Parser(prog="tfvae", description="Train and inspect variational autoencoders.")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a VAE and write a run folder")
    d = run.DEFAULTS
    train.add_argument("--data", default=d["data"], help="digits, mnist, fashion_mnist, or a .npy/.npz/.csv path")
    train.add_argument("--out", default=d["out"], help="run folder (default runs/<data>)")
    train.add_argument("--latent-dim", type=int, default=d["latent_dim"])
    train.add_argument("--hidden", type=_hidden, default=d["hidden"], help="hidden units, e.g. 128,128")
    train.add_argument("--likelihood", choices=("bernoulli", "gaussian"), default=d["likelihood"])
    train.add_argument("--beta", type=float, default=d["beta"])
    train.add_argument("--epochs", type=int, default=d["epochs"])
    train.add_argument("--batch-size", type=int, default=d["batch_size"])
    train.add_argument("--learning-rate", type=float, default=d["learning_rate"])
    train.add_argument("--seed", type=int, default=d["seed"])
    train.add_argument("--num-samples", type=int, default=d["num_samples"],
                       help="k > 1 trains on the k-sample importance-weighted bound (IWAE)")
    train.add_argument("--conditional", action="store_true", default=d["conditional"],
                       help="a conditional VAE on the dataset's class labels (named datasets only)")
    train.add_argument("--strategy", choices=distribute.STRATEGIES, default="default",
                       help="mirrored: all local GPUs; multi-worker: the machines in TF_CONFIG (same command on each)")
    train.add_argument("--resume", action="store_true",
                       help="continue the interrupted run in --out from its backup (repeat the run's options)")
    train.add_argument("--deterministic", action="store_true",
                       help="deterministic ops: the same seed gives identical weights")
    train.add_argument("--backup-every", type=int, default=resumable.BACKUP_EVERY, metavar="BATCHES",
                       help="batches between two backups of the training state (default %(default)s)")
    evaluate = commands.add_parser(
        "evaluate", help="test ELBO, k-sample NLL, bits/dim and active units of a run; writes evaluation.json"
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by `tfvae train`")
    evaluate.add_argument("--num-samples", type=int, default=1000, help="importance samples per example")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the importance samples")
    return parser


def main(argv=None):
    """Runs the command; returns the exit status (0 ok, 1 training stopped or failed, 2 bad input)."""
    command = "tfvae"
    try:
        args = build_parser().parse_args(argv)
        command = f"tfvae {args.command}"
        if args.command == "train":
            result = run.train(
                data=args.data, out=args.out, latent_dim=args.latent_dim, hidden=args.hidden,
                likelihood=args.likelihood, beta=args.beta, epochs=args.epochs, batch_size=args.batch_size,
                learning_rate=args.learning_rate, seed=args.seed, num_samples=args.num_samples,
                conditional=args.conditional, strategy=args.strategy, resume=args.resume,
                deterministic=args.deterministic, backup_every=args.backup_every,
            )
            metrics = result["metrics"]
            print(
                f"test ELBO: {metrics['elbo']:.2f} nats per example "
                f"(reconstruction {metrics['reconstruction']:.2f}, KL {metrics['kl']:.2f}); "
                f"run folder: {result['out']}"
            )
            if result["stopped"]:
                saved = os.path.join(result["out"], "model.keras")
                print(f"{command}: error: {result['stopped']} Saved to {saved}.", file=sys.stderr)
                return 1
        elif args.command == "evaluate":
            results = evaluate_run(args.run_dir, num_samples=args.num_samples, seed=args.seed)
            print(format_evaluation(results))
            print(f"written: {os.path.join(args.run_dir, 'evaluation.json')}")
    except SystemExit as exit_:  # --help
        return exit_.code or 0
    except (UsageError, ValueError, TypeError, OSError, RuntimeError) as error:
        print(f"{command}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{command}: interrupted; `tfvae train ... --resume` continues from the last backup", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - TensorFlow's errors are not ValueErrors: still one line
        print(f"{command}: error: {type(error).__name__}: {_one_line(error)}", file=sys.stderr)
        return 1
    return 0


def _one_line(error):
    return " ".join(str(error).split())


if __name__ == "__main__":
    sys.exit(main())
