"""Search strategies: what to try next.  Each one is a small ask/tell class."""

from archsearch.strategy.base import Strategy
from archsearch.strategy.grid import GridSearch
from archsearch.strategy.random_search import RandomSearch

__all__ = ["GridSearch", "RandomSearch", "Strategy"]
