"""rt2.actions"""
