"""rt2.data"""
