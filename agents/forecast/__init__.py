"""Forecasters of the coming minute's peak rate (EWM, last value, the LSTM, the oracle) and the LSTM's weights."""
