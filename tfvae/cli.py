"""The `tfvae` command: thin argument parsing over `tfvae.run`.

    tfvae train [--data digits] [--epochs 150] ...
"""

import argparse
import sys

from tfvae import run


def _hidden(text):
    try:
        return tuple(int(units) for units in text.split(",") if units.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 128,128, got {text!r}") from None


def build_parser():
    parser = argparse.ArgumentParser(prog="tfvae", description="Train and inspect variational autoencoders.")
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
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            result = run.train(
                data=args.data, out=args.out, latent_dim=args.latent_dim, hidden=args.hidden,
                likelihood=args.likelihood, beta=args.beta, epochs=args.epochs, batch_size=args.batch_size,
                learning_rate=args.learning_rate, seed=args.seed,
            )
            metrics = result["metrics"]
            print(
                f"test ELBO: {metrics['elbo']:.2f} nats per example "
                f"(reconstruction {metrics['reconstruction']:.2f}, KL {metrics['kl']:.2f}); "
                f"run folder: {result['out']}"
            )
    except (ValueError, TypeError, OSError, RuntimeError) as error:
        print(f"tfvae {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
