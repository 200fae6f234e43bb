"""Bad input to every `jointdistill` subcommand: one clear line, exit code 2, nothing touched.

Table-driven over the real CLI, in this process (none of these cases gets as far as starting
ROS): the ROS-free core (`jointdistill_core.cli.main`), and the full command
(`jointdistill_ros.cli.main`) for the cases of the subcommands that run ROS. Each case names the
text its error line must contain (the file, key, topic or option at fault) and the paths that
must come out byte-for-byte unchanged.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from jointdistill_core.cli import main, subcommands
from jointdistill_ros import cli as ros_cli
from node_helpers import save_tiny_student


@dataclass(frozen=True)
class Case:
    name: str
    argv: list[str]          # '{root}' is replaced by the fixture folder
    expected: str            # must appear in the error line ('{root}' replaced too)
    unchanged: tuple[str, ...] = field(default=())  # paths under root that must not change
    needs_ros: bool = False  # a subcommand of the full command only (jointdistill_ros.cli)


def tree_digest(path: Path) -> dict[str, str]:
    """SHA-256 of every file under path (or of path itself)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob('*') if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


class MarkerOnUnpickle:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, 'w')


@pytest.fixture(scope='module')
def root(tmp_path_factory) -> Path:
    """A dataset, a bag, a report, a checkpoint and broken variants of each."""
    root = tmp_path_factory.mktemp('tools')
    assert main(['data', 'synth', '--out', str(root / 'ds'), '--split', 'val', '--num', '2',
                 '--size', '64x96']) == 0
    assert main(['bag', 'make', '--out', str(root / 'bag'), '--frames', '2', '--size',
                 '64x96']) == 0
    # The ground-truth topics have the formats of the node's outputs: a valid outputs bag.
    assert main(['bag', 'eval', '--bag', str(root / 'bag'), '--outputs', str(root / 'bag'),
                 '--out', str(root / 'report'), '--depth-topic', '/camera/depth_gt',
                 '--labels-topic', '/camera/labels_gt']) == 0
    (root / 'report' / 'mine.txt').write_text('a file of the user')

    # Datasets whose files do not match.
    shutil.copytree(root / 'ds', root / 'ds_missing')
    (root / 'ds_missing' / 'val' / 'label' / '1.npy').unlink()
    shutil.copytree(root / 'ds', root / 'ds_shape')
    np.save(root / 'ds_shape' / 'val' / 'depth' / '0.npy', np.zeros((10, 10), np.float32))

    # Bags: truncated mcap, garbage mcap, broken metadata.yaml.
    (mcap,) = (root / 'bag').glob('*.mcap')
    for name, damage in (('bag_truncated', lambda data: data[:len(data) // 2]),
                         ('bag_garbage', lambda data: bytes(range(256)) * 8),
                         ('bag_metadata', None)):
        shutil.copytree(root / 'bag', root / name)
        if damage is None:
            (root / name / 'metadata.yaml').write_text('rosbag2_bagfile_information: [\n')
        else:
            target = root / name / mcap.name
            target.write_bytes(damage(mcap.read_bytes()))

    # Configs: unknown key, wrong type, not YAML; a valid one whose out holds a run.
    (root / 'unknown_key.yaml').write_text('task: multi\nbogus_key: 1\n')
    (root / 'wrong_type.yaml').write_text('task: multi\nsteps: many\n')
    (root / 'not_yaml.yaml').write_text('task: [\n')
    (root / 'study_unknown.yaml').write_text('name: s\nbogus_key: 1\n')
    (root / 'valid.yaml').write_text(f'task: multi\nout: {root / "previous_run"}\n')
    (root / 'previous_run').mkdir()
    (root / 'previous_run' / 'resume.safetensors').write_bytes(b'state of an earlier run')

    # Checkpoints: a good one, a pickle disguised as one, an existing export.
    save_tiny_student(root / 'student')
    (root / 'evil.safetensors').write_bytes(pickle.dumps(MarkerOnUnpickle(str(root / 'MARKER'))))
    config = json.loads((root / 'student.json').read_text())
    config.pop('weights_sha256')  # so the loader gets as far as parsing the "weights"
    (root / 'evil.json').write_text(json.dumps(config))
    (root / 'existing.onnx').write_bytes(b'an earlier export')
    assert main(['evaluate', '--checkpoint', str(root / 'student.safetensors'), '--data',
                 f'synthetic:{root / "ds"}', '--split', 'val', '--out',
                 str(root / 'evaluation')]) == 0
    return root


CASES = [
    # data synth
    Case('synth into a non-empty split', ['data', 'synth', '--out', '{root}/ds', '--split', 'val',
         '--num', '2', '--size', '64x96'], '{root}/ds/val is not empty; pass --force', ('ds',)),
    Case('synth bad size', ['data', 'synth', '--out', '{root}/new', '--split', 'val', '--size',
         '0x5'], 'argument --size'),
    Case('synth zero frames', ['data', 'synth', '--out', '{root}/new', '--split', 'val', '--num',
         '0'], 'argument --num'),
    # bag make / from-dataset
    Case('bag make over a bag', ['bag', 'make', '--out', '{root}/bag', '--frames', '2', '--size',
         '64x96'], '{root}/bag exists already; pass --force', ('bag',)),
    Case('bag make bad topic', ['bag', 'make', '--out', '{root}/new_bag', '--image-topic',
         'my camera'], "argument --image-topic: 'my camera' is not a valid ROS topic name"),
    Case('bag make zero rate', ['bag', 'make', '--out', '{root}/new_bag', '--rate', '0'],
         'argument --rate'),
    Case('dataset with a missing file', ['bag', 'from-dataset', '--data',
         'synthetic:{root}/ds_missing', '--split', 'val', '--out', '{root}/new_bag'],
         '{root}/ds_missing/val/label has 1 files but {root}/ds_missing/val/image has 2'),
    Case('dataset with mismatched shapes', ['bag', 'from-dataset', '--data',
         'synthetic:{root}/ds_shape', '--split', 'val', '--out', '{root}/new_bag'],
         '{root}/ds_shape/val/depth/0.npy: depth is 10x10 but the image is 64x96'),
    Case('dataset spec unknown', ['bag', 'from-dataset', '--data', 'foo:{root}/ds', '--split',
         'val', '--out', '{root}/new_bag'], "unknown dataset spec 'foo:{root}/ds'"),
    Case('dataset split missing', ['bag', 'from-dataset', '--data', 'synthetic:{root}/ds',
         '--split', 'train', '--out', '{root}/new_bag'], 'split folder {root}/ds/train'),
    Case('bag from-dataset over a bag', ['bag', 'from-dataset', '--data', 'synthetic:{root}/ds',
         '--split', 'val', '--out', '{root}/bag'], '{root}/bag exists already', ('bag',)),
    # bag info / play / eval
    Case('bag info missing', ['bag', 'info', '{root}/no_bag'], 'bag {root}/no_bag does not exist'),
    Case('bag info truncated', ['bag', 'info', '{root}/bag_truncated'],
         'cannot open bag {root}/bag_truncated'),
    Case('bag info garbage', ['bag', 'info', '{root}/bag_garbage'],
         'cannot open bag {root}/bag_garbage'),
    Case('bag info bad metadata', ['bag', 'info', '{root}/bag_metadata'],
         'cannot open bag {root}/bag_metadata: Could not load YAML'),
    Case('bag play truncated', ['bag', 'play', '{root}/bag_truncated'],
         'cannot open bag {root}/bag_truncated', needs_ros=True),
    Case('bag play missing topic', ['bag', 'play', '{root}/bag', '--topics', '/nope'],
         'bag {root}/bag has no topic /nope', needs_ros=True),
    Case('bag eval corrupted input', ['bag', 'eval', '--bag', '{root}/bag_garbage', '--outputs',
         '{root}/bag', '--out', '{root}/new_report'], 'cannot open bag {root}/bag_garbage'),
    Case('bag eval missing output topics', ['bag', 'eval', '--bag', '{root}/bag', '--outputs',
         '{root}/bag', '--out', '{root}/new_report', '--depth-topic', '/nope'],
         'outputs bag {root}/bag has neither /nope nor /segmentation/labels'),
    Case('bag eval over a report', ['bag', 'eval', '--bag', '{root}/bag', '--outputs',
         '{root}/bag', '--out', '{root}/report', '--depth-topic', '/camera/depth_gt',
         '--labels-topic', '/camera/labels_gt'],
         '{root}/report already holds a report; pass --force', ('report',)),
    Case('bag eval live, no model', ['bag', 'eval', '--bag', '{root}/bag', '--model',
         '{root}/none.safetensors', '--out', '{root}/new_report'],
         '--model: {root}/none.safetensors does not exist', needs_ros=True),
    Case('bag eval rate without realtime', ['bag', 'eval', '--bag', '{root}/bag', '--rate', '2',
         '--out', '{root}/new_report'], '--rate sets the speed of --realtime replay',
         needs_ros=True),
    Case('bag eval live in the ROS-free CLI', ['bag', 'eval', '--bag', '{root}/bag', '--model',
         '{root}/student.safetensors', '--out', '{root}/new_report'],
         'live evaluation (without --outputs) runs the ROS perception node'),
    # train
    Case('train unknown key', ['train', '--config', '{root}/unknown_key.yaml'],
         '{root}/unknown_key.yaml: unknown key(s) bogus_key (= 1); the top level accepts:'),
    Case('train wrong type', ['train', '--config', '{root}/wrong_type.yaml'],
         "{root}/wrong_type.yaml: steps: expected an integer, got 'many'"),
    Case('train not YAML', ['train', '--config', '{root}/not_yaml.yaml'],
         '{root}/not_yaml.yaml: not valid YAML'),
    Case('train missing config', ['train', '--config', '{root}/none.yaml'],
         'config file not found: {root}/none.yaml'),
    Case('train bad override', ['train', '--config', '{root}/valid.yaml', '--set',
         'optim.lr=abc'], "optim.lr: expected a number, got 'abc'"),
    Case('train over a previous run', ['train', '--config', '{root}/valid.yaml'],
         '{root}/previous_run holds a previous run (resume.safetensors); pass --resume',
         ('previous_run',)),
    # export
    Case('export over an export', ['export', '--checkpoint', '{root}/student.safetensors',
         '--format', 'onnx', '--out', '{root}/existing.onnx'],
         '{root}/existing.onnx exists; pass --force', ('existing.onnx',)),
    Case('export missing checkpoint', ['export', '--checkpoint', '{root}/none.safetensors',
         '--format', 'onnx', '--out', '{root}/new.onnx'],
         '{root}/none.safetensors: checkpoint weights not found'),
    Case('export pickle checkpoint', ['export', '--checkpoint', '{root}/evil.safetensors',
         '--format', 'onnx', '--out', '{root}/new.onnx'],
         '{root}/evil.safetensors: not a valid safetensors file'),
    Case('export bad size', ['export', '--checkpoint', '{root}/student.safetensors', '--format',
         'onnx', '--size', '50x50', '--out', '{root}/new.onnx'], 'multiples of 32'),
    # evaluate
    Case('evaluate over an evaluation', ['evaluate', '--checkpoint',
         '{root}/student.safetensors', '--data', 'synthetic:{root}/ds', '--split', 'val',
         '--out', '{root}/evaluation'], '{root}/evaluation already holds an evaluation '
         '(metrics.json); pass --force', ('evaluation',)),
    Case('evaluate dataset with a missing file', ['evaluate', '--checkpoint',
         '{root}/student.safetensors', '--data', 'synthetic:{root}/ds_missing', '--split',
         'val', '--out', '{root}/new'], '{root}/ds_missing/val/label has 1 files'),
    Case('evaluate pickle checkpoint', ['evaluate', '--checkpoint', '{root}/evil.safetensors',
         '--data', 'synthetic:{root}/ds', '--split', 'val', '--out', '{root}/new'],
         '{root}/evil.safetensors: not a valid safetensors file'),
    Case('evaluate unknown split', ['evaluate', '--checkpoint', '{root}/student.safetensors',
         '--data', 'synthetic:{root}/ds', '--split', 'nope', '--out', '{root}/new'],
         'split folder {root}/ds/nope'),
    # teacher
    Case('teacher missing file', ['teacher', '--seg', '{root}/none.onnx'],
         'seg teacher: path: {root}/none.onnx: not found'),
    Case('teacher pickle checkpoint', ['teacher', '--depth', '{root}/evil.safetensors'],
         'depth teacher: path: {root}/evil.safetensors: not a valid safetensors file'),
    Case('teacher option of the other task', ['teacher', '--seg', '{root}/student.safetensors',
         '--seg-opt', 'depth_kind=metric'], '--seg-opt depth_kind: applies to depth teachers'),
    Case('teacher image without out', ['teacher', '--seg', '{root}/student.safetensors',
         '--image', '{root}/none.png'], '--image needs --out'),
    # distill
    Case('distill missing teacher', ['distill', '--data', 'synthetic', '--seg-teacher',
         '{root}/none.onnx', '--depth-teacher', '{root}/student.safetensors', '--out',
         '{root}/new'], 'seg teacher: path: {root}/none.onnx: not found'),
    Case('distill pickle teacher', ['distill', '--data', 'synthetic', '--seg-teacher',
         '{root}/student.safetensors', '--depth-teacher', '{root}/evil.safetensors', '--out',
         '{root}/new'], 'depth teacher: path: {root}/evil.safetensors: not a valid safetensors'),
    Case('distill bad data option', ['distill', '--data', 'folder:{root}/ds?every=0',
         '--seg-teacher', '{root}/student.safetensors', '--depth-teacher',
         '{root}/student.safetensors', '--out', '{root}/new'],
         "--data: 'folder:{root}/ds?every=0': option every must be >= 1"),
    Case('distill bad scale weight', ['distill', '--data', 'synthetic', '--seg-teacher',
         '{root}/student.safetensors', '--depth-teacher', '{root}/student.safetensors',
         '--scale-weight', '1.5', '--out', '{root}/new'], '--scale-weight must be in (0, 1)'),
    # study
    Case('study unknown key', ['study', '--config', '{root}/study_unknown.yaml'],
         '{root}/study_unknown.yaml: unknown key(s) bogus_key (= 1); the top level accepts:'),
    Case('study not YAML', ['study', '--config', '{root}/not_yaml.yaml'],
         '{root}/not_yaml.yaml: not valid YAML'),
    Case('study missing config', ['study', '--config', '{root}/none.yaml'],
         'config file not found: {root}/none.yaml'),
    # demo
    Case('demo missing model', ['demo', '--out', '{root}/demo', '--model',
         '{root}/none.safetensors'], 'model {root}/none.safetensors not found', needs_ros=True),
    Case('demo bad size', ['demo', '--out', '{root}/demo', '--size', 'big'], 'argument --size',
         needs_ros=True),
]


def run_cli(case: Case, argv: list[str]) -> int:
    try:
        return ros_cli.main(argv) if case.needs_ros else main(argv)
    except SystemExit as exit_:  # argparse errors
        return exit_.code


@pytest.mark.parametrize('case', CASES, ids=[case.name for case in CASES])
def test_bad_input_gives_one_clear_line_and_changes_nothing(case, root, capsys):
    argv = [part.replace('{root}', str(root)) for part in case.argv]
    before = {path: tree_digest(root / path) for path in case.unchanged}
    capsys.readouterr()
    code = run_cli(case, argv)
    stderr = capsys.readouterr().err
    assert code == 2, (code, stderr)
    assert 'Traceback' not in stderr, stderr
    error_lines = [line for line in stderr.splitlines() if 'error:' in line]
    assert len(error_lines) == 1, stderr
    assert error_lines[0] == stderr.strip().splitlines()[-1]  # nothing follows the error
    assert error_lines[0].startswith(f'jointdistill {argv[0]}'), error_lines[0]
    assert case.expected.replace('{root}', str(root)) in error_lines[0], error_lines[0]
    for path, digest in before.items():
        assert tree_digest(root / path) == digest, f'{path} changed'
    for created in ('new', 'new_bag', 'new_report', 'new.onnx', 'demo'):
        assert not (root / created).exists(), f'{created} was created by a failing command'
    assert not (root / 'MARKER').exists(), 'code from a pickle ran'


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> set[tuple]:
    """Every runnable command line prefix of `parser`, e.g. ('train',) and ('bag', 'play')."""
    try:
        choices = subcommands(parser).choices
    except ValueError:  # a leaf: no subcommands below
        return {prefix}
    return {path for name, sub in choices.items() for path in command_paths(sub, prefix + (name,))}


def test_every_subcommand_of_the_full_command_has_a_case():
    paths = command_paths(ros_cli.build_parser())
    assert {('demo',), ('bag', 'play'), ('bag', 'eval'), ('train',)} <= paths  # the walk works
    covered = {path for path in paths for case in CASES if tuple(case.argv[:len(path)]) == path}
    assert paths == covered, sorted(paths - covered)

