"""rt2.sim"""
