"""Operations: getting work to the workers despite faults.

- ``ops.enqueue``: enqueue a task after commit; when the broker cannot be
  reached the task is recorded (``DeferredTask``) instead of failing the
  request, and the user is told (``ops.middleware``).
- ``ops.sweep``: the periodic sweeper (beat, every 5 minutes) that queues the
  recorded tasks again and resumes work whose enqueue was lost or whose
  worker died: close runs, invoice emails, CDR imports.
"""
