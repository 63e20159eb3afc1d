"""The base every domain package stands on: settings, database, runtime, credentials,
audit, errors and units. Imports no domain package.
"""
