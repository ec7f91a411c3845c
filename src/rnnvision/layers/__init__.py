"""Recurrent layers: cells (one step) and sequence layers (the loop, directions, stacking)."""

from rnnvision.layers.cells import GRUCell, LSTMCell, RNNCell, gru_step, lstm_step, rnn_step
from rnnvision.layers.indrnn import IndRNN
from rnnvision.layers.lru import LRU
from rnnvision.layers.mdlstm import MDLSTM2d
from rnnvision.layers.recurrent import GRU, LSTM, RNN, make_recurrent
from rnnvision.layers.renet import ReNetLayer, renet_reference

__all__ = [
    "GRU",
    "GRUCell",
    "IndRNN",
    "LSTM",
    "LSTMCell",
    "LRU",
    "MDLSTM2d",
    "RNN",
    "RNNCell",
    "ReNetLayer",
    "gru_step",
    "lstm_step",
    "make_recurrent",
    "renet_reference",
    "rnn_step",
]
