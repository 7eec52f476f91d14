"""Channel adapters: each turns what arrived into the same few domain calls.

Every channel registers one adapter in the channel registry (crm/channels/registry.py): its name,
whether and how it reaches a resident, and how its pages, API, socket handlers and commands register.
"""
