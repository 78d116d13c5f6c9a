"""One TensorFlow ``MultiWorkerMirroredStrategy`` worker (its ``TF_CONFIG`` set by the parent);
imports TensorFlow only.

A custom loop: ``strategy.run`` of the single-process backend's step on this worker's shard,
the per-worker loss scaled by the global batch (``compute_average_loss``) so that the Keras
optimizer's all-reduce (a sum) of the gradients gives the single-process gradient, and
``strategy.reduce`` of the loss. Modes: eager runs ``strategy.run`` eagerly; graph wraps the
distributed step in ``tf.function``; compiled jit-compiles (XLA) each worker's forward and
backward inside that graph, because XLA on CPU cannot compile the ring all-reduce
("Only compiling NCCL/auto collective is supported"): the gradient all-reduce and the Adam
update stay in the TensorFlow graph.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from fwstudy.harness.distributed.worker import WorkerContext

ISOLATED_ALLREDUCE_CALLS = 10
ISOLATED_ALLREDUCE_WARMUP = 2
ISOLATED_ALLREDUCE_METHOD = {
    "layout": "per-tensor: one zero tensor shaped like each trainable variable (the gradients), "
    "all-reduced (SUM) together in one tf.function call through the strategy's replica context",
    "warmup_calls": ISOLATED_ALLREDUCE_WARMUP,
    "barrier": "a one-element all-reduce before every call (and its result read), untimed",
    "timed_calls": ISOLATED_ALLREDUCE_CALLS,
    "clock": "perf_counter around the call, stopped after every reduced tensor is read on the host",
}
IN_STEP_COMMUNICATION = (
    "not measured: TensorFlow exposes no in-step communication time (the gradient all-reduce "
    "runs inside the optimizer's graph); isolated_allreduce_ms is the collective's cost alone"
)


def train(ctx: WorkerContext) -> dict[str, Any]:
    begin = time.perf_counter()
    import keras
    import numpy as np
    import tensorflow as tf

    from fwstudy.frameworks.tensorflow.trial import (
        compile_evidence,
        configure,
        framework_env,
        make_optimizer,
        tracing_count,
        xla_cache_entries,
    )
    from fwstudy.harness.distributed.plan import shard
    from fwstudy.harness.distributed.worker import fault_hook, samples_payload
    from fwstudy.harness.environment import frameworks_loaded
    from fwstudy.measure import collectors, training
    from fwstudy.measure.timing import measure_steps
    from fwstudy.workloads import get_workload

    import_s = time.perf_counter() - begin
    config, plan = ctx.config, ctx.plan
    rss_after_import = collectors.rss_mb()
    device = configure(ctx.worker_config)  # threads and GPU memory growth, before the runtime starts
    on_gpu = device.startswith("/GPU")
    comm = tf.distribute.experimental.CommunicationImplementation
    implementation = comm.NCCL if on_gpu else comm.RING
    start = time.perf_counter()
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(implementation=implementation)
    )
    setup_s = time.perf_counter() - start
    if strategy.num_replicas_in_sync != plan.world_size:
        raise RuntimeError(
            f"the strategy has {strategy.num_replicas_in_sync} replicas, the plan {plan.world_size} workers"
        )

    spec = get_workload(config.workload)
    params = config.workload_params
    keras.utils.set_random_seed(config.seed)
    gen = np.random.default_rng(config.seed)
    rows = shard(ctx.rank, plan.per_worker_batch)
    pool = [spec.synthetic_batch(params, plan.global_batch, gen) for _ in range(training.BATCH_POOL)]
    batches = [tuple(tf.constant(a[rows]) for a in batch) for batch in pool]
    with strategy.scope():
        model = spec.implementation("tensorflow").build_model(params)
        optimizer = make_optimizer()
        optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")

    def gradients(x, y):
        with tf.GradientTape() as tape:
            per_example = loss_fn(y, model(x, training=True))
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=plan.global_batch)
        return loss, tape.gradient(loss, model.trainable_variables)

    compute = tf.function(gradients, jit_compile=True) if config.mode == "compiled" else gradients

    def replica_step(x, y):
        loss, grads = compute(x, y)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    def distributed_step(x, y):
        per_replica = strategy.run(replica_step, args=(x, y))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    fn = distributed_step if config.mode == "eager" else tf.function(distributed_step)
    fault = fault_hook(ctx.rank)

    def step(i: int) -> float:
        # The reduced loss is a collective: when float() returns, every worker has finished
        # this step, so the clock read after it times the slowest worker's step.
        value = float(fn(*batches[i % len(batches)]))
        if on_gpu:
            tf.test.experimental.sync_devices()
        fault(i)
        return value

    reset = collectors.reset_high_water()
    xla_before = xla_cache_entries()
    samples = measure_steps(step, config.warmup, config.steps)
    trial_peak = collectors.high_water_mb() if reset else None
    isolated = isolated_allreduce_ms(tf, strategy, model.trainable_variables)
    env = framework_env(ctx.worker_config, device)
    env.update(
        strategy="MultiWorkerMirroredStrategy", communication=implementation.name,
        tf_config=json.loads(os.environ.get("TF_CONFIG", "null")),
        allreduce_isolated_method=ISOLATED_ALLREDUCE_METHOD,
        in_step_communication=IN_STEP_COMMUNICATION,
    )
    if config.mode == "compiled":
        env["compile_scope"] = "per-worker forward+backward under XLA; all-reduce and Adam in tf.function"
    traces = tracing_count(fn) + (tracing_count(compute) if compute is not gradients else 0)
    evidence = compile_evidence(traces, xla_before, xla_cache_entries(), jit=config.mode == "compiled")
    # traces: the distributed step's tf.function plus, compiled, the jit-compiled gradients'.
    evidence["xla_cache_note"] = (
        "one cache folder for this host's workers (launch.py): the count may include the "
        "other workers' compilations made while this one ran"
    )
    env["compile_evidence"] = evidence
    return {
        **samples_payload(samples),
        "import_s": import_s,
        "setup_s": setup_s,
        "params": int(model.count_params()),
        "isolated_allreduce_ms": isolated,
        "rss_after_import_mb": rss_after_import,
        "trial_peak_rss_mb": trial_peak,
        "threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "framework_env": env,
        "frameworks_loaded": frameworks_loaded(),
    }


def isolated_allreduce_ms(tf: Any, strategy: Any, variables: list) -> list[float]:
    """Gradient-shaped tensors all-reduced alone in a ``tf.function``, each call after a
    one-element all-reduce that acts as a barrier. TensorFlow does not expose the time its
    training step spends in the all-reduce; this is the collective's cost on its own."""
    payload = [tf.zeros_like(v) for v in variables]
    token = tf.zeros([1])

    def reduce(values):
        ctx = tf.distribute.get_replica_context()
        return ctx.all_reduce(tf.distribute.ReduceOp.SUM, values)

    @tf.function
    def barrier():
        return strategy.run(reduce, args=(token,))

    @tf.function
    def all_reduce():
        return strategy.run(reduce, args=(payload,))

    def wait(result) -> None:
        for value in tf.nest.flatten(result):
            strategy.experimental_local_results(value)[0].numpy()

    for _ in range(ISOLATED_ALLREDUCE_WARMUP):  # trace both functions, warm the ring, untimed
        wait(barrier())
        wait(all_reduce())
    times = []
    for _ in range(ISOLATED_ALLREDUCE_CALLS):
        wait(barrier())
        start = time.perf_counter()
        wait(all_reduce())
        times.append((time.perf_counter() - start) * 1e3)
    return times
