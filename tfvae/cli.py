"""The `tfvae` command: thin argument parsing over `tfvae.run`.

    tfvae train [--data digits|FILE|FOLDER] [--epochs 150] ... [--strategy mirrored] [--resume | --overwrite]
    tfvae evaluate RUN_DIR [--importance-samples 1000]

Exit status: 0 done, 1 failed (training stopped on a non-finite loss, a full
disk or unwritable folder, a run folder in use), 2 bad input, 130 Ctrl-C.
Errors are one line on stderr (see `tfvae._cli`). The previous release's
`--num-samples` still works in both commands, saying in one line what it is
called now (`tfvae._renamed`).
"""

import argparse
import os
import shlex
import sys

from tfvae import _cli, _renamed


def _hidden(text):
    try:
        return tuple(int(units) for units in text.split(",") if units.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 128,128, got {text!r}") from None


def build_parser():
    """The argument parser of `tfvae` (imports TensorFlow through `tfvae.run`)."""
    from tfvae import distribute, likelihoods, objectives, priors, resumable, run

    parser = _cli.Parser(prog="tfvae", description="Train and inspect variational autoencoders.",
                         epilog="To export a trained run (SavedModel, LiteRT .tflite files): tfvae-export --help")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a VAE and write a run folder")
    d = run.DEFAULTS
    train.add_argument("--data", default=d["data"],
                       help="digits, mnist, fashion_mnist, a .npy/.npz/.csv file or a folder of PNG/JPEG images")
    train.add_argument("--out", default=d["out"], help="run folder (None: runs/<data>)")
    train.add_argument("--body", choices=run.BODIES, default=d["body"],
                       help="auto: conv for a folder of images, mlp otherwise")
    train.add_argument("--filters", type=_hidden, default=d["filters"], help="a conv body's filters, e.g. 32,64")
    train.add_argument("--memory-budget", default=d["memory_budget"],
                       help="a folder of images whose decoded pixels fit is loaded into memory, a larger one "
                            "streamed from disk (e.g. 500MB, 2GB)")
    train.add_argument("--validation-split", type=float, default=d["validation_split"],
                       help="share of the training rows to validate on (0: the test split, curves only)")
    train.add_argument("--early-stopping", type=int, default=d["early_stopping"], metavar="PATIENCE",
                       help="stop after PATIENCE epochs without a better validation loss and keep the best "
                            "weights (needs --validation-split)")
    train.add_argument("--latent-dim", type=int, default=d["latent_dim"], help="size of z")
    train.add_argument("--hidden", type=_hidden, default=d["hidden"], help="an mlp body's hidden units, e.g. 128,128")
    train.add_argument("--likelihood", choices=likelihoods.LIKELIHOODS.names(), default=d["likelihood"],
                       help="None: bernoulli for named datasets and image folders, gaussian for files")
    train.add_argument("--prior", choices=priors.PRIORS.names(), default=d["prior"], help="p(z)")
    train.add_argument("--objective", choices=objectives.OBJECTIVES.names(), default=d["objective"],
                       help="None: the ELBO (IWAE with more than one IWAE sample); --beta and the IWAE samples "
                            "apply to it")
    train.add_argument("--beta", type=float, default=d["beta"], help="weight of the KL term")
    train.add_argument("--epochs", type=int, default=d["epochs"], help="training epochs")
    train.add_argument("--batch-size", type=int, default=d["batch_size"], help="examples per step")
    train.add_argument("--learning-rate", type=float, default=d["learning_rate"], help="Adam's learning rate")
    train.add_argument("--seed", type=int, default=d["seed"], help="seeds weights, sampling and the data split")
    train.add_argument("--iwae-samples", type=int, default=d["iwae_samples"], metavar="K",
                       help="K > 1 trains on the K-sample importance-weighted bound (IWAE)")
    train.add_argument("--num-samples", dest="iwae_samples", type=int, new="--iwae-samples",
                       action=_renamed.RenamedFlag, help=argparse.SUPPRESS)
    train.add_argument("--conditional", action="store_true", default=d["conditional"],
                       help="a conditional VAE on the dataset's class labels (named datasets only)")
    train.add_argument("--strategy", choices=distribute.STRATEGIES, default="default",
                       help="mirrored: all local GPUs; multi-worker: the machines in TF_CONFIG (same command on each)")
    train.add_argument("--resume", action="store_true",
                       help="continue the interrupted run in --out from its backup (repeat the run's options); "
                            "with no backup yet, start from the beginning")
    train.add_argument("--overwrite", action="store_true",
                       help="delete the run already in --out (its exports included) and train anew")
    train.add_argument("--deterministic", action="store_true",
                       help="deterministic ops: the same seed gives identical weights")
    train.add_argument("--backup-every", type=int, default=resumable.BACKUP_EVERY, metavar="BATCHES",
                       help="batches between two backups of the training state")
    evaluate = commands.add_parser(
        "evaluate", help="test ELBO, k-sample NLL, bits/dim and active units of a run; writes evaluation.json"
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by `tfvae train`")
    evaluate.add_argument("--importance-samples", type=int, default=1000, metavar="K",
                          help="importance samples per example for the NLL")
    evaluate.add_argument("--num-samples", dest="importance_samples", type=int, new="--importance-samples",
                          action=_renamed.RenamedFlag, help=argparse.SUPPRESS)
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the importance samples")
    return parser


def main(argv=None):
    """Runs the command; returns the exit status (0 ok, 1 failed, 2 bad input, 130 interrupted).

    Args:
        argv: the arguments after `tfvae`. None (the `tfvae` command and
            `python -m tfvae`) reads `sys.argv[1:]` and takes the process
            to be the command's own: it imports without cyclic garbage
            collection, freezes what the imports leave, and raises a Ctrl-C
            during the imports when they are done
            (`tfvae._cli.command_start_up`). With a list, as when called
            from Python, neither is done.
    """
    own_process = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    command = f"tfvae {argv[0]}" if argv and argv[0] in ("train", "evaluate") else "tfvae"  # a Ctrl-C may come first
    try:
        with _cli.command_start_up(own_process), _cli.quiet_tensorflow():
            from tfvae import run
        args = build_parser().parse_args(argv)
        command = f"tfvae {args.command}"
        if args.command == "train":
            return _train(run, args, command)
        results = run.evaluate_run(args.run_dir, importance_samples=args.importance_samples, seed=args.seed)
        from tfvae.evaluation import format_evaluation

        print(format_evaluation(results))
        print(f"written: {os.path.join(args.run_dir, 'evaluation.json')}")
    except KeyboardInterrupt as interrupt:
        if command == "tfvae train":
            how = f"continue with: {_resume_command(argv)}"
            interrupt = KeyboardInterrupt(f"{interrupt}; {how}" if str(interrupt) else f"{how} (from the last backup)")
        return _cli.exit_status(command, interrupt)
    except BaseException as error:  # noqa: BLE001 - every error is one line (see tfvae._cli)
        return _cli.exit_status(command, error)
    return _cli.OK


def _train(run, args, command):
    result = run.train(
        data=args.data, out=args.out, latent_dim=args.latent_dim, hidden=args.hidden,
        likelihood=args.likelihood, beta=args.beta, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, seed=args.seed, iwae_samples=args.iwae_samples,
        conditional=args.conditional, prior=args.prior, objective=args.objective, strategy=args.strategy,
        resume=args.resume,
        deterministic=args.deterministic, backup_every=args.backup_every, overwrite=args.overwrite,
        body=args.body, filters=args.filters, validation_split=args.validation_split,
        early_stopping=args.early_stopping, memory_budget=args.memory_budget,
    )
    metrics = result["metrics"]
    elbo = (f"test ELBO: {metrics['elbo']:.2f} nats per example "
            f"(reconstruction {metrics['reconstruction']:.2f}, KL {metrics['kl']:.2f})")
    if result["stopped"]:  # one message: the error, and what the weights kept score
        saved = os.path.join(result["out"], "model.keras")
        print(f"{command}: error: {result['stopped']} Saved to {saved} ({elbo} with those weights).",
              file=sys.stderr)
        return _cli.FAILED
    print(f"{elbo}; run folder: {result['out']}")
    return _cli.OK


def _resume_command(argv):
    """The command line that continues an interrupted `tfvae train`."""
    kept = [arg for arg in argv if arg not in ("--resume", "--overwrite")]
    return shlex.join(["tfvae", *kept, "--resume"])


if __name__ == "__main__":
    sys.exit(main())
