"""The ``fkd`` command line (introduced in notebook 01; each subcommand's help says more).

    fkd data synth OUT_DIR [--counts default|paper] [--seed N]
    fkd data check DATA_DIR [--json]
    fkd evaluate PREDICTIONS|dlib --data-dir DIR --split SPLIT [--json] [--boxes bb_detector|own]
    fkd train [--profile P] [--data-dir DIR] [--approach A ...] [--out DIR] [--retrain [MODEL ...]] [--devices N]
    fkd reproduce [--profile quick|cpu|full|real] [--data-dir DIR] [--only 03,04] [--force] [--retrain] [--yes]
    fkd info [--json]
    fkd predict IMAGE_OR_DIR ... [--approach cascade|end-to-end|region|box] [--stages K] [--flip] [--reframe N] [--runtime auto|keras|onnx|int8] [--out DIR] [--json]
    fkd export --format keras|onnx|tflite|savedmodel --out DIR [--weights DIR]
    fkd quantize --weights DIR --data-dir DIR [--images N] [--overwrite]

exit codes (every subcommand):
    0  all done
    1  some inputs failed (unreadable images, predictions that are NaN, data problems
       found by 'fkd data check', a failing notebook); the others were processed
    2  usage or setup error (bad option, missing file or folder, a folder without images,
       results that would be written over, damaged weights); nothing was done
  130  stopped with Ctrl-C (a stopped 'fkd train' resumes when rerun)
"""
import argparse
import json
import os
import sys

from .io import DataError


EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 130


def _json(value):
    from .outputs import strict_json
    return strict_json(value, indent=1)


def _print_table(report):
    print(f"{'points':>6} {'subset':>10} {'n':>5} {'NME %':>7} {'AUC@0.08':>9} {'FR@0.08 %':>10}")
    for points, table in report.items():
        for subset, row in table.items():
            print(f"{points:>6} {subset:>10} {row['n']:>5} {100 * row['nme']:7.2f} "
                  f"{100 * row['auc']:9.2f} {100 * row['fr']:10.2f}")


def cmd_data_synth(args):
    from . import synthetic
    counts = {"default": synthetic.DEFAULT_COUNTS, "paper": synthetic.PAPER_COUNTS}[args.counts]
    out = synthetic.generate(args.out_dir, counts=counts, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {sum(counts.values())} synthetic faces to {out}")
    return 0


def cmd_data_check(args):
    from .data import check
    report = check(args.data_dir)
    if args.json:
        print(_json(report))
    else:
        print(f"data directory: {report['data_dir']}")
        for split, info in report["splits"].items():
            subsets = ", ".join(f"{k} {v}" for k, v in info["subsets"].items()) or "absent"
            print(f"  {split:<10} {info['count']:>5}  ({subsets})")
        for folder in report["absent_folders"]:
            print(f"  absent: {folder}")
        for problem in report["problems"]:
            print(f"  problem: {problem}")
    return EXIT_SOME_FAILED if report["problems"] else EXIT_OK


def cmd_evaluate(args):
    from .data import ground_truth
    from .metrics import evaluate
    from .pipeline import load_predictions
    if args.predictions == "dlib":  # the peer, run now on the same images and boxes
        from .peers import predict_split
        pred = predict_split(args.data_dir, args.split, args.boxes)
        points, gt, subsets = pred.points, pred.gt, pred.subsets
        if args.save:
            from .pipeline import save_predictions
            save_predictions(args.save, pred.ids, pred.points)
    else:
        ids, subsets, gt = ground_truth(args.data_dir, args.split)
        _, points = load_predictions(args.predictions, ids=list(ids))
    report = evaluate(points, gt, subsets)
    if args.json:
        print(_json(report))
    else:
        _print_table(report)
    failed = report["68"]["all"]["n_nonfinite"]
    if failed:
        print(f"fkd evaluate: {args.predictions}: {failed} of {len(points)} predictions have NaN "
              "or infinite points: counted as failures (infinite error)", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def cmd_train(args):
    from .data import data_dir_for
    from .landmarker import APPROACH_ALIASES, check_weights_out, export_weights
    from .pipeline import get_models, models_for
    from .train import TrainingStopped
    if args.devices:  # read by train.training_devices, here and in any child process
        os.environ["FKD_DEVICES"] = str(args.devices)
    approaches = [APPROACH_ALIASES.get(a, a) for a in args.approach]
    names = models_for(approaches)
    retrain = _retrain_choice(args.retrain, names)
    check_weights_out(args.out, args.profile, args.overwrite)  # before hours of training
    data_dir = data_dir_for(args.data_dir, args.profile)
    try:
        models = get_models(approaches, args.profile, data_dir, retrain, verbose=2)
        print(f"models ready: {', '.join(models)}")
        export_weights(args.profile, data_dir, approaches, args.out, " ".join(sys.argv), models,
                       overwrite=args.overwrite)
    except (KeyboardInterrupt, TrainingStopped) as stop:
        where = f" from epoch {stop.epoch} of {stop.model}" if isinstance(stop, TrainingStopped) else ""
        print(f"fkd train: stopped; rerun the same command to resume{where}", file=sys.stderr)
        return EXIT_STOPPED
    return EXIT_OK


def _retrain_choice(retrain, names):
    """``--retrain`` alone: every model; with names: those (checked against ``names``)."""
    if retrain is None:
        return False
    if not retrain:
        return True
    unknown = sorted(set(retrain) - set(names))
    if unknown:
        raise DataError(f"--retrain: {', '.join(unknown)} not among the models of these "
                        f"approaches ({', '.join(names)})")
    return set(retrain)


def cmd_reproduce(args):
    from .reproduce import NotebookFailed, reproduce
    try:
        reproduce(args.profile, args.data_dir, args.only, args.force, args.seed, yes=args.yes,
                  extra_parameters={"retrain": True} if args.retrain else None)
    except NotebookFailed as err:
        print(f"fkd reproduce: {err}", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK


def cmd_predict(args):
    from .landmarker import Landmarker, predict_files
    landmarker = Landmarker(args.weights, args.approach, args.detector, args.min_face, args.stages,
                            args.runtime, face_check=not args.no_face_check, flip=args.flip,
                            reframe=args.reframe)
    summary = predict_files(args.inputs, landmarker, args.out, overlays=not args.no_overlay,
                            log=lambda msg: print(msg, file=sys.stderr), overwrite=args.overwrite)
    if args.json:
        print(_json(summary))
    else:
        n_faces = sum(len(r["faces"]) for r in summary["images"])
        n_rejected = sum(len(r.get("rejected", ())) for r in summary["images"])
        print(f"{len(summary['images'])} images, {n_faces} faces, "
              f"{len(summary['no_face'])} without a face, {len(summary['skipped'])} skipped"
              + (f", {n_rejected} detection(s) failed the face check" if n_rejected else "")
              + (f"; results in {args.out}" if args.out else ""))
    if summary["skipped"]:
        print(f"fkd predict: {len(summary['skipped'])} of "
              f"{len(summary['skipped']) + len(summary['images'])} inputs failed (see above)",
              file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK


def cmd_export(args):
    from .formats import export_models
    from .weights_io import shipped_weights_dir
    weights = args.weights or shipped_weights_dir()
    print(f"exporting the models of {weights} as {args.format} to {args.out}")
    manifest = export_models(weights, args.format, args.out, overwrite=args.overwrite)
    print(f"wrote {len(manifest['models'])} models and manifest.json to {args.out}")
    return EXIT_OK


def cmd_quantize(args):
    from .quantize import quantize_weights
    print(f"calibrating int8 models of {args.weights} on {args.images} training images of "
          f"{args.data_dir}")
    manifest = quantize_weights(args.weights, args.data_dir, count=args.images,
                                overwrite=args.overwrite)
    print(f"wrote {len(manifest['int8']['models'])} int8 models into {args.weights}; "
          "fkd predict --weights DIR now runs them by default (--runtime keras: the float ones)")
    return EXIT_OK


def cmd_report(args):
    from . import paths
    from .report import markdown_table, update_readme
    from .reproduce import ACCELERATOR_PROFILES
    folder = paths.results_dir(args.profile)
    path, ablations = folder / "results.json", sorted(folder.glob("our_ablations_*.csv"))
    fig5 = sorted(folder.glob("paper_ablations_*.csv"))
    if not path.is_file() and not ablations and not fig5:
        raise DataError(f"{path}: not found; run 'fkd reproduce --profile {args.profile}' first")
    manifest_path = path.with_name("manifest.json")
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    data_dir = manifest.get("data_dir", "?")
    for root in (paths.home(), paths.PROJECT_ROOT.parent):
        if data_dir.startswith(str(root) + "/"):
            data_dir = ("../" if root != paths.home() else "") + data_dir[len(str(root)) + 1:]
            break
    source = lambda f: (f"profile `{args.profile}`, data `{data_dir}`, generated by `fkd report "
                        f"--profile {args.profile}` from `{f.relative_to(paths.home())}`")
    # a run that recorded its devices, on a GPU machine (or a rehearsal with --wall-times)
    if (args.profile in ACCELERATOR_PROFILES or args.wall_times) and "devices" in manifest:
        from .pipeline import model_specs
        from .report import device_run_report
        wall = json.loads(open(args.wall_times).read()) if args.wall_times else None
        block = device_run_report(args.profile, model_specs(args.profile), args.compare, wall)
        _report_block(block, args, f"results:{args.profile}")
        return 0
    if path.is_file():
        results, blocks = json.loads(path.read_text()), []
        for split in args.splits:
            if not any(split in v for v in results.values()):
                continue
            for points in (68, 51):
                blocks.append(f"*{split} split, {points} points — {source(path)}*\n\n"
                              + markdown_table(results, split, points))
        if blocks:  # (a notebook-09-only run saves no predictions)
            _report_block("\n\n".join(blocks), args, f"results:{args.profile}")
        _pose_block(args, manifest.get("data_dir"), source)
    if ablations:
        import pandas as pd
        from .report import frame_markdown
        text = "\n\n".join(f"*notebook 09, {f.stem.split('_')[-1]} split, 68 points — "
                            f"{source(f)}*\n\n" + frame_markdown(pd.read_csv(f))
                            for f in ablations)
        _report_block(text, args, f"ablations:{args.profile}")
    if fig5:
        import pandas as pd
        from .report import frame_markdown
        text = "\n\n".join(f"*notebook 06 (paper Fig. 5a-d), the training tenth, 68 points — "
                            f"{source(f)}*\n\n" + frame_markdown(pd.read_csv(f)) for f in fig5)
        _report_block(text, args, f"fig5:{args.profile}")
    if args.reference:
        from .report import write_reference
        for written in write_reference(args.profile):
            print(f"reference table written: {written}")
    return 0


def _pose_block(args, data_dir, source):
    """NME by head turn and on the worst 5 % of faces, from the saved per-image predictions
    (they need the data set's true points: without it the block is skipped, saying why)."""
    from pathlib import Path

    from . import paths
    from .pipeline import load_saved
    from .report import frame_markdown, pose_frame
    split = "validation"
    if split not in args.splits:
        return
    if not data_dir or not Path(data_dir).is_dir():
        print(f"pose table skipped: the data set {data_dir} is not here", file=sys.stderr)
        return
    predictions = load_saved(args.profile, data_dir, split)
    if not predictions:
        return
    folder = paths.results_dir(args.profile)
    text = (f"*{split} split, 68 points, NME % by head turn (yaw estimated from the true points) "
            f"and on each approach's worst 5 % of images — {source(folder / 'results.json')}*"
            f"\n\n" + frame_markdown(pose_frame(predictions)))
    _report_block(text, args, f"pose:{args.profile}")


def _report_block(text, args, key):
    from .report import update_readme
    print(text)
    if args.readme:
        try:
            update_readme(args.readme, key, text)
        except ValueError as error:  # a README without that block: the table is printed only
            print(f"{error}: printed only", file=sys.stderr)


def cmd_info(args):
    from .devices import describe, info
    found = info()
    print(json.dumps(found, indent=1) if args.json else describe(found))
    return EXIT_OK


def _min_face(text):
    """argparse type of ``--min-face``: a fraction in (0, 1] (argparse names the option)."""
    from .detect import check_min_face
    try:
        return check_min_face(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a fraction of the photo's longer side in (0, 1], "
                                         f"got {text!r}") from None


def _whole_number(text):
    """argparse type of ``--reframe``: a whole number from 0 to ``MAX_REFRAME``."""
    from .landmarker import MAX_REFRAME
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_REFRAME:
        raise argparse.ArgumentTypeError(f"a whole number from 0 to {MAX_REFRAME}, got {text!r}")
    return value


def _version():
    from . import __version__
    return __version__


def build_parser():
    from .formats import RUNTIME_CHOICES
    from .quantize import CALIBRATION_IMAGES
    parser = argparse.ArgumentParser(prog="fkd", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="generate or check a data directory")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    synth = data_sub.add_parser("synth", help="write the synthetic 300-W-like set")
    synth.add_argument("out_dir")
    synth.add_argument("--counts", choices=("default", "paper"), default="default")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--overwrite", action="store_true")
    synth.set_defaults(func=cmd_data_synth)
    chk = data_sub.add_parser("check", help="counts per split and subset, problems found")
    chk.add_argument("data_dir")
    chk.add_argument("--json", action="store_true")
    chk.set_defaults(func=cmd_data_check)

    ev = sub.add_parser("evaluate", help="NME / AUC / FR of a predictions file")
    ev.add_argument("predictions", help="a predictions .npz, or 'dlib' to run dlib's shape "
                    "predictor (the [peers] extra) on the same images")
    ev.add_argument("--data-dir", required=True)
    ev.add_argument("--split", required=True, choices=("train", "validation", "test"))
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--boxes", choices=("bb_detector", "own"), default="bb_detector",
                    help="dlib only: the 300-W detector boxes, or dlib's own face detector")
    ev.add_argument("--save", default=None, help="dlib only: also write its predictions here")
    ev.set_defaults(func=cmd_evaluate)

    tr = sub.add_parser("train", help="train (or load) the models of some approaches")
    tr.add_argument("--profile", default="quick")
    tr.add_argument("--data-dir", default="")
    tr.add_argument("--approach", nargs="+", default=["cascade"],
                    help="end-to-end, region, box, oracle, cascade (ours; the default)")
    tr.add_argument("--retrain", nargs="*", default=None, metavar="MODEL",
                    help="train again even if stored: every model, or only the named ones "
                         "(e.g. --retrain end_to_end)")
    tr.add_argument("--devices", type=int, default=None, metavar="N",
                    help="train data-parallel on the first N devices (default: all that Keras "
                         "sees; global batch and learning rate scale with N)")
    tr.add_argument("--out", default=None, help="weights folder (default weights/<profile>)")
    tr.add_argument("--overwrite", action="store_true", help="replace an existing weights folder")
    tr.set_defaults(func=cmd_train)

    pr = sub.add_parser("predict", help="68 landmarks on every face of images or folders")
    pr.add_argument("inputs", nargs="+", help="image files and/or folders")
    pr.add_argument("--approach", default="cascade",
                    choices=("cascade", "end-to-end", "region", "box"))
    pr.add_argument("--out", default="fkd-predictions", help="folder for <image>.json and overlays")
    pr.add_argument("--weights", default=None, help="weights folder (default: the shipped weights/real)")
    pr.add_argument("--detector", choices=("hog", "haar", "lbp"), default=None,
                    help="face detector: hog (dlib, default), haar (OpenCV, faster), lbp")
    pr.add_argument("--min-face", type=_min_face, default=None, metavar="FRACTION",
                    help="smallest face of the fast pass, fraction of the photo's longer "
                         "side (default 0.2; 0.12 finds smaller faces next to big ones, "
                         "2.7x slower)")
    pr.add_argument("--stages", type=int, default=None, metavar="K",
                    help="how many of the cascade's stages to run before its region ResNets: "
                         "1 (fastest) to 3 (most accurate); default 2 (about 50 faces/s on 2 "
                         "cores with the shipped int8 models); see the README's speed table")
    pr.add_argument("--flip", action="store_true",
                    help="the cascade's region ResNets also read every region mirrored and "
                         "average the two reads: more accurate (with --stages 3, the most "
                         "accurate setting), four more region passes a face")
    pr.add_argument("--reframe", type=_whole_number, default=None, metavar="N",
                    help="how many times (0-4) the cascade's stage 1 reads each detected face "
                         "again from a box placed around its own points before the cascade "
                         "runs: default 1 where the weights folder is calibrated for it (the "
                         "shipped one is), else 0 (the detector's box as it is); 2 with "
                         "--stages 3 --flip is the most accurate setting; one stage-1 pass a "
                         "face each")
    pr.add_argument("--runtime", choices=RUNTIME_CHOICES, default=None,
                    help="run the models with Keras, ONNX Runtime in float32 (converted once "
                         "and cached) or ONNX Runtime in int8 (the weights folder's 8-bit "
                         "models, fkd quantize); default auto: int8 where the folder has them")
    pr.add_argument("--no-face-check", action="store_true",
                    help="keep every detection: by default a detection whose stages' points "
                         "disagree more than the weights' calibrated limit (no face, or part of "
                         "one) is left out and listed under 'rejected' in its JSON")
    pr.add_argument("--json", action="store_true", help="print the results as JSON")
    pr.add_argument("--no-overlay", action="store_true", help="skip the overlay PNGs")
    pr.add_argument("--overwrite", action="store_true", help="replace earlier results in --out")
    pr.set_defaults(func=cmd_predict)

    ex = sub.add_parser("export", help="write the landmarker's models in a standard format")
    ex.add_argument("--format", required=True, choices=("keras", "onnx", "tflite", "savedmodel"))
    ex.add_argument("--out", required=True, help="folder for the models and their manifest")
    ex.add_argument("--weights", default=None, help="weights folder (default: the shipped weights)")
    ex.add_argument("--overwrite", action="store_true", help="replace an earlier export in --out")
    ex.set_defaults(func=cmd_export)

    qz = sub.add_parser("quantize", help="add int8 models (ONNX Runtime) to a weights folder")
    qz.add_argument("--weights", required=True, help="weights folder that 'fkd train' wrote")
    qz.add_argument("--data-dir", required=True,
                    help="300-W copy whose training images calibrate the 8-bit ranges")
    qz.add_argument("--images", type=int, default=CALIBRATION_IMAGES,
                    help=f"training images to calibrate on (default {CALIBRATION_IMAGES})")
    qz.add_argument("--overwrite", action="store_true", help="replace earlier int8 models")
    qz.set_defaults(func=cmd_quantize)

    rt = sub.add_parser("report", help="Markdown results tables from results/<profile>/results.json")
    rt.add_argument("--profile", default="quick")
    rt.add_argument("--splits", nargs="+", default=["validation", "test"])
    rt.add_argument("--readme", default=None, help="also fill the README's results:<profile> block")
    rt.add_argument("--compare", default="cpu",
                    help="full profile: the profile whose accuracy goes beside it (default cpu)")
    rt.add_argument("--wall-times", default=None, metavar="JSON",
                    help="full profile: {notebook: seconds} over resumed calls "
                         "(benchmarks/full_on_gpu.py writes it)")
    rt.add_argument("--reference", action="store_true",
                    help="also copy the numbers into the package's reference tables "
                         "(fkd_utils/resources/reference/), shown beside synthetic runs")
    rt.set_defaults(func=cmd_report)

    inf = sub.add_parser("info", help="Keras backend, versions and the devices Keras trains on")
    inf.add_argument("--json", action="store_true")
    inf.set_defaults(func=cmd_info)

    rp = sub.add_parser("reproduce", help="run every notebook with papermill")
    rp.add_argument("--profile", default="quick")
    rp.add_argument("--data-dir", default="")
    rp.add_argument("--only", type=lambda s: s.split(","), default=None,
                    help="comma-separated notebook numbers, e.g. 03,04")
    rp.add_argument("--force", action="store_true", help="rerun notebooks that are up to date")
    rp.add_argument("--seed", type=int, default=42)
    rp.add_argument("--yes", action="store_true",
                    help="train the full profile even without an accelerator (hours on a CPU)")
    rp.add_argument("--retrain", action="store_true",
                    help="retrain the models of this profile and data set (notebooks' retrain)")
    rp.set_defaults(func=cmd_reproduce)
    return parser


def main(argv=None):
    """Run a subcommand; exit codes as in the module's docstring (``fkd --help``)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataError, FileExistsError, ValueError) as err:
        print(f"fkd: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:  # a file system refusal: name the file, no traceback
        where = f"{err.filename}: " if err.filename else ""
        print(f"fkd: error: {where}{err.strerror or err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("fkd: stopped", file=sys.stderr)
        return EXIT_STOPPED


if __name__ == "__main__":
    sys.exit(main())
