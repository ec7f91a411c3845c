"""Recurrent layers: cells (one step) and sequence layers (the loop, directions, stacking)."""

from rnnvision.layers.cells import GRUCell, LSTMCell, RNNCell, gru_step, lstm_step, rnn_step
from rnnvision.layers.recurrent import GRU, LSTM, RNN, make_recurrent

__all__ = [
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "RNN",
    "RNNCell",
    "gru_step",
    "lstm_step",
    "make_recurrent",
    "rnn_step",
]
