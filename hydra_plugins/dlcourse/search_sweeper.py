"""Optuna search (hparams_search=..., conf/hydra/sweeper/search.yaml) that prunes and resumes.

Hydra imports every module of hydra_plugins on every start to find its plugins: this one stays light,
and the search itself (_search.py, which imports optuna: about 2 s) is imported only by a search.
"""

from hydra.plugins.sweeper import Sweeper

from src.utils.sweep_dir import sweep_or_exit


class SearchSweeper(Sweeper):
    def __init__(self, **settings):
        from hydra_plugins.dlcourse._search import Search

        self.search = Search(**settings)

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.search.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        return sweep_or_exit(self.search.sweep, arguments)
