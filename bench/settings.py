"""Settings for bench/verify_load.py only: the project's settings with bench/urls.py, which
adds the floor view. Production never loads this module, so it has no such route."""

from cas.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
