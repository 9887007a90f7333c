"""Various functions used by different ALF modules (``alf.utils.common``).

A thin module: it re-exports the generic helpers that ``alf-math`` keeps in
``alf.utils.common_core`` and the runtime pieces defined in focused private
modules:

* execution modes (``rollout_context``, ``mark_replay``, ``is_eval``, ...):
  ``_common_exe_mode``;
* ``Periodically`` and ``TargetUpdater``: ``_common_updaters``;
* the global environment and its spec getters: ``_common_env``;
* seeding, free ports, summary record context, metric logging:
  ``_common_runtime``;
* summary/eval intervals, OU noise, epsilon-greedy, training phase:
  ``_common_training``;
* configuration files and repository snapshots: ``_common_config`` and
  ``_common_snapshot``.
"""

# ---- configuration files and repository snapshots --------------------------
from alf.utils._common_config import (
    copy_gin_configs,
    get_conf_file,
    get_gin_confg_strs,
    get_gin_file,
    parse_conf_file,
    read_conf_file,
    summarize_config,
    summarize_gin_config,
    write_config,
    write_gin_configs,
)
from alf.utils._common_env import (
    active_action_target_entropy,
    get_action_spec,
    get_env,
    get_initial_time_step,
    get_observation_spec,
    get_raw_observation_spec,
    get_reward_spec,
    get_states_shape,
    get_vocab_size,
    set_global_env,
    set_transformed_observation_spec,
)
from alf.utils._common_exe_mode import (
    EXE_MODE_EVAL,
    EXE_MODE_OTHER,
    EXE_MODE_PRETRAIN,
    EXE_MODE_REPLAY,
    EXE_MODE_ROLLOUT,
    eval_context,
    exe_mode_name,
    is_eval,
    is_pretrain,
    is_replay,
    is_rollout,
    mark_eval,
    mark_pretrain,
    mark_replay,
    mark_rollout,
    pretrain_context,
    replay_context,
    rollout_context,
    set_exe_mode,
)
from alf.utils._common_runtime import (
    get_unused_port,
    is_inside_docker_container,
    log_metrics,
    run_under_record_context,
    set_random_seed,
)
from alf.utils._common_snapshot import (
    alf_root,
    generate_alf_snapshot,
    get_alf_snapshot_env_vars,
    is_repo_root,
    snapshot_repo_roots,
    unzip_alf_snapshot,
)
from alf.utils._common_training import (
    compute_summary_or_eval_interval,
    create_ou_process,
    get_epsilon_greedy,
    is_training,
)
from alf.utils._common_updaters import Periodically, TargetUpdater
from alf.utils.common_core import (
    abs_path,
    add_method,
    as_list,
    call_stack,
    cast_transformer,
    check_numerics,
    detach,
    expand_dims_as,
    flattened_size,
    get_all_parameters,
    get_initial_policy_state,
    image_scale_transformer,
    info,
    info_once,
    reset_state_if_necessary,
    tuplify2d,
    warning,
    warning_once,
)

__all__ = [
    # execution modes
    "EXE_MODE_EVAL",
    "EXE_MODE_OTHER",
    "EXE_MODE_PRETRAIN",
    "EXE_MODE_REPLAY",
    "EXE_MODE_ROLLOUT",
    "eval_context",
    "exe_mode_name",
    "is_eval",
    "is_pretrain",
    "is_replay",
    "is_rollout",
    "mark_eval",
    "mark_pretrain",
    "mark_replay",
    "mark_rollout",
    "pretrain_context",
    "replay_context",
    "rollout_context",
    "set_exe_mode",
    # updaters
    "Periodically",
    "TargetUpdater",
    # the global environment
    "active_action_target_entropy",
    "get_action_spec",
    "get_env",
    "get_initial_time_step",
    "get_observation_spec",
    "get_raw_observation_spec",
    "get_reward_spec",
    "get_states_shape",
    "get_vocab_size",
    "set_global_env",
    "set_transformed_observation_spec",
    # process and run helpers
    "get_unused_port",
    "is_inside_docker_container",
    "log_metrics",
    "run_under_record_context",
    "set_random_seed",
    # training-loop helpers
    "compute_summary_or_eval_interval",
    "create_ou_process",
    "get_epsilon_greedy",
    "is_training",
    # generic helpers (alf-math's alf.utils.common_core)
    "abs_path",
    "add_method",
    "as_list",
    "call_stack",
    "cast_transformer",
    "check_numerics",
    "detach",
    "expand_dims_as",
    "flattened_size",
    "get_all_parameters",
    "get_initial_policy_state",
    "image_scale_transformer",
    "info",
    "info_once",
    "reset_state_if_necessary",
    "tuplify2d",
    "warning",
    "warning_once",
    # configuration files and repository snapshots
    "copy_gin_configs",
    "get_conf_file",
    "get_gin_confg_strs",
    "get_gin_file",
    "parse_conf_file",
    "read_conf_file",
    "summarize_config",
    "summarize_gin_config",
    "write_config",
    "write_gin_configs",
    "alf_root",
    "generate_alf_snapshot",
    "get_alf_snapshot_env_vars",
    "is_repo_root",
    "snapshot_repo_roots",
    "unzip_alf_snapshot",
]

# Public names defined in this package's private helper modules report this module, so
# pickles, reprs and docs name the public import path, never a private file.
for _name in __all__:
    _obj = globals()[_name]
    if str(getattr(_obj, "__module__", None) or "").startswith("alf.utils._"):
        _obj.__module__ = "alf.utils.common"  # not __name__: "__main__" under python -m
del _name, _obj
