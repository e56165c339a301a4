"""Live situation: pure functions turning sensor counts into density, alerts and live risk.

:mod:`.density` (density, level of service, alert bands, rate of rise, exit flow) and
:mod:`.risk` (the crowd modifier on a space's score). The control-room service calls them.
"""
