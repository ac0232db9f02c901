#!/usr/bin/env sh
# Builds read_metadata: flatc generates the reader of tflite_metadata.fbs, g++ compiles it.
# Needs flatc and the flatbuffers headers and library (Debian/Ubuntu:
# apt-get install flatbuffers-compiler libflatbuffers-dev g++).
#
#   sh export/reader/build.sh OUT_DIR     # writes OUT_DIR/read_metadata
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUT_DIR}
mkdir -p "$out"
flatc --cpp -o "$out" "$here/tflite_metadata.fbs"
${CXX:-g++} -std=c++17 -O1 -Wall -I "$out" "$here/read_metadata.cc" -o "$out/read_metadata" -lflatbuffers
