"""rt2.policy"""
