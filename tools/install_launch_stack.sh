#!/usr/bin/env bash
# Install the ROS 2 launch system (launch, launch_ros, launch_testing, launch_testing_ros,
# launch_xml, launch_yaml, and `ros2 launch` / `ros2 pkg`) into the project's venv from an
# archive of their sources, for machines without a ROS install (these packages have no
# wheels). The archive's README (shared/vendor/README.md) holds the facts this follows.
#
#   tools/install_launch_stack.sh ARCHIVE [VENV]      VENV defaults to the repository's .venv
#
# Idempotent: a stamp in the venv records the hashes of the archive and of
# requirements-launch.txt; a second run with the same inputs checks the imports and stops.
set -euo pipefail

usage() { echo "usage: $0 ARCHIVE [VENV]  (ARCHIVE: ros2-launch-stack.tgz; VENV: default .venv)" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
repo=$(cd "$(dirname "$0")/.." && pwd)
archive=$(realpath -m "$1")
venv=$(realpath -m "${2:-$repo/.venv}")
python=$venv/bin/python
requirements=$repo/requirements-launch.txt
[ -f "$archive" ] || { echo "error: no archive at $1" >&2; exit 2; }
[ -x "$python" ] || { echo "error: no Python at $python: create the venv first (make setup)" >&2; exit 2; }
for tool in cmake c++ make; do
  command -v "$tool" > /dev/null || { echo "error: $tool not found; composition_interfaces is built with cmake, make and a C++ compiler (apt-get install cmake make g++)" >&2; exit 2; }
done

# Pure-Python packages, installed in dependency order.
python_packages=(launch launch_xml launch_yaml launch_testing launch_ros launch_testing_ros
                 ros2cli ros2pkg ros2launch)
check_imports() {
  AMENT_PREFIX_PATH=$venv "$python" -c 'import launch_ros, launch_testing_ros, ros2launch
import composition_interfaces.srv'
}

stamp=$venv/.launch-stack-installed
inputs=$(cat "$archive" "$requirements" | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ] && check_imports 2>/dev/null; then
  echo "launch stack already installed in $venv (stamp $stamp matches $archive)"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log=$work/install.log
# Runs a step with its output in the log; on failure shows the log's end and stops.
logged() {
  "$@" >> "$log" 2>&1 || { tail -n 60 "$log" >&2; echo "error: failed: $*" >&2; exit 1; }
}
echo "== unpacking $archive"
tar -xzf "$archive" -C "$work"
for package in composition_interfaces "${python_packages[@]}"; do
  [ -d "$work/$package" ] || { echo "error: $archive has no folder $package/" >&2; exit 1; }
done

echo "== pinned wheels from requirements-launch.txt (rosidl build tools, osrf-pycommon, psutil)"
logged "$python" -m pip install -r "$requirements"

# The wheels' exported CMake targets name the include folders of the machine they were built
# on; CMake refuses non-existent include paths, so point them at this venv's Python and numpy.
echo "== pointing the wheels' CMake exports at this Python's and numpy's include folders"
read -r python_include numpy_include < <("$python" -c \
  'import sysconfig, numpy; print(sysconfig.get_paths()["include"], numpy.get_include())')
while IFS= read -r -d '' export_file; do
  sed -i -E \
    -e "s#/opt/python/[^/;\"]+/include/python3\.[0-9]+#$python_include#g" \
    -e "s#/opt/python/[^;\"]+/site-packages/numpy/_core/include#$numpy_include#g" \
    "$export_file"
done < <(grep -lZ --include='*Export.cmake' -r '/opt/python/' "$venv/share" || true)

echo "== building composition_interfaces (rosidl, CMake) into $venv"
export AMENT_PREFIX_PATH=$venv CMAKE_PREFIX_PATH=$venv
logged cmake -S "$work/composition_interfaces" -B "$work/build" -DCMAKE_INSTALL_PREFIX="$venv" \
  -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$python" -DCMAKE_BUILD_TYPE=Release
logged cmake --build "$work/build" --target install -j "$(nproc)"

echo "== pip install --no-deps ${python_packages[*]}"
logged "$python" -m pip install --no-deps --no-build-isolation "${python_packages[@]/#/$work/}"

check_imports
echo "$inputs" > "$stamp"
echo "launch stack installed in $venv in $SECONDS s: $(AMENT_PREFIX_PATH=$venv "$python" -c \
  'import importlib.metadata as m; print(", ".join(f"{p} {m.version(p)}" for p in ("launch", "launch_ros", "launch_testing")))')"
