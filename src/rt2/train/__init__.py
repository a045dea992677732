"""rt2.train"""
