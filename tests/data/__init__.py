"""Small fixtures cut from the shared data sets (tests/data/cut.py), so a fresh clone tests
on its own. The full sets stay in ../shared/data, for training and bench/."""

from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAJECTORIES = HERE / "trajectories"
ROUTER_DATA = HERE / "router"
