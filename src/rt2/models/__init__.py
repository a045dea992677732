"""rt2.models"""
