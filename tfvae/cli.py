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


def _train_flags(run, distribute, likelihoods, objectives, priors):
    """`tfvae train`'s flags, one per argument of `tfvae.run.train`: type and help; the default is `train`'s."""
    return {
        "data": dict(help="digits, mnist, fashion_mnist, a .npy/.npz/.csv file or a folder of PNG/JPEG images"),
        "out": dict(help="run folder (None: runs/<data>)"),
        "body": dict(choices=run.BODIES, help="auto: conv for a folder of images, mlp otherwise"),
        "filters": dict(type=_hidden, help="a conv body's filters, e.g. 32,64"),
        "memory_budget": dict(help="a folder of images whose decoded pixels fit is loaded into memory, a larger "
                                   "one streamed from disk (e.g. 500MB, 2GB)"),
        "validation_split": dict(type=float, help="share of the training rows to validate on (0: the test split, "
                                                  "curves only)"),
        "early_stopping": dict(type=int, metavar="PATIENCE", help="stop after PATIENCE epochs without a better "
                               "validation loss and keep the best weights (needs --validation-split)"),
        "latent_dim": dict(type=int, help="size of z"),
        "hidden": dict(type=_hidden, help="an mlp body's hidden units, e.g. 128,128"),
        "likelihood": dict(choices=likelihoods.LIKELIHOODS.names(),
                           help="None: bernoulli for named datasets and image folders, gaussian for files"),
        "prior": dict(choices=priors.PRIORS.names(), help="p(z)"),
        "objective": dict(choices=objectives.OBJECTIVES.names(),
                          help="None: the ELBO (IWAE with more than one IWAE sample); --beta and the IWAE samples "
                               "apply to it"),
        "beta": dict(type=float, help="weight of the KL term"),
        "epochs": dict(type=int, help="training epochs"),
        "batch_size": dict(type=int, help="examples per step"),
        "learning_rate": dict(type=float, help="Adam's learning rate"),
        "seed": dict(type=int, help="seeds weights, sampling and the data split"),
        "iwae_samples": dict(type=int, metavar="K", help="K > 1 trains on the K-sample importance-weighted bound "
                                                         "(IWAE)"),
        "conditional": dict(help="a conditional VAE on the dataset's class labels (named datasets only)"),
        "strategy": dict(choices=distribute.STRATEGIES, help="mirrored: all local GPUs; multi-worker: the machines "
                                                             "in TF_CONFIG (same command on each)"),
        "resume": dict(help="continue the interrupted run in --out from its backup (repeat the run's options); "
                            "with no backup yet, start from the beginning"),
        "overwrite": dict(help="delete the run already in --out (its exports included) and train anew"),
        "deterministic": dict(help="deterministic ops: the same seed gives identical weights"),
        "backup_every": dict(type=int, metavar="BATCHES", help="batches between two backups of the training state"),
    }


def build_parser():
    """The argument parser of `tfvae` (imports TensorFlow through `tfvae.run`)."""
    from tfvae import distribute, likelihoods, objectives, priors, resumable, run

    parser = _cli.Parser(prog="tfvae", description="Train and inspect variational autoencoders.",
                         epilog="To export a trained run (SavedModel, LiteRT .tflite files): tfvae-export --help")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a VAE and write a run folder")
    defaults = run.TRAIN_DEFAULTS  # written once, in run.train's signature
    flags = _train_flags(run, distribute, likelihoods, objectives, priors)
    train.set_defaults(train_arguments=tuple(flags))  # what `_train` hands to run.train
    for name, flag in flags.items():
        default = defaults[name]
        if default is False:
            flag["action"] = "store_true"
        train.add_argument("--" + name.replace("_", "-"), default=default, **flag)
    train.add_argument("--num-samples", dest="iwae_samples", type=int, new="--iwae-samples",
                       action=_renamed.RenamedFlag, help=argparse.SUPPRESS)
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
    result = run.train(**{name: getattr(args, name) for name in args.train_arguments})
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
