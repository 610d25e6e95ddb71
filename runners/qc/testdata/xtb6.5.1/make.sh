#!/bin/sh
# Re-makes the real xtb outputs of this folder (see ../README.md). Run it
# here, with the Debian package's xtb on PATH; it writes only into a
# temporary folder and copies back the .out/.err/.log files.
set -eu
here=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=1
run() { # name xyz args...
	name=$1 xyz=$2
	shift 2
	rm -rf "$work/$name" && mkdir "$work/$name" && cp "$here/$xyz" "$work/$name/"
	(cd "$work/$name" && xtb "$xyz" "$@" >"$here/$name.out" 2>"$here/$name.err") || true
}
run water_opt water.xyz --opt
run water_opt_2cycles water.xyz --opt --cycles 2
run water_chrg50 water.xyz --opt --chrg 50
run bad_count bad_count.xyz --opt
run bad_element bad_element.xyz --opt
run linear_hess linear_water.xyz --hess
run planar_nh3_hess planar_nh3.xyz --hess
# one run with both streams in one file, as a batch job's log holds them
rm -rf "$work/log" && mkdir "$work/log" && cp water.xyz "$work/log/"
(cd "$work/log" && xtb water.xyz --opt >"$here/water_opt_2to1.log" 2>&1) || true
