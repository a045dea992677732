"""rt2.eval"""
