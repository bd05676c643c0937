"""stub"""
KINDS = {}
TIME_LIMITS = {}
