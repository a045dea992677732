"""rt2.serve"""
