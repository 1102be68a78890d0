"""A hand-made run shared by the figure tests: a trace small enough to check every drawn point by hand."""

# A hand-made trace: two fresh noises (0, 1) at step 0; 0 has children 2 and 3 at step 1 (1 is pruned);
# 3 has child 4 at step 2, which the run returned.
START = {
    "kind": "start",
    "step": -1,
    "nfe_total": 0,
    "grid": [1.0, 0.5, 0.25, 0.0],
    "config": {"model": "toy2d", "method": "rbf", "process": "linear-sde", "nfe": 5, "reward": "point:1,1",
               "heldout": "logp", "params": {}},
    "world": {"mixture": {"means": [[1.0, 1.0], [-1.0, -1.0]], "stds": [0.3, 0.3], "weights": [0.5, 0.5]}},
}


def candidates(step, nfe, ids, parents, rewards, t):
    n = len(ids)
    return {"kind": "candidates", "step": step, "nfe_total": nfe, "n": n, "t": [t] * n, "ids": ids,
            "parents": parents, "states": [[0.1 * i, -0.1 * i] for i in ids], "x0": [[0.2 * i, 0.2 * i] for i in ids],
            "rewards": rewards, "reward_max": max(rewards), "reward_mean": sum(rewards) / n}


EVENTS = [
    START,
    candidates(0, 2, [0, 1], [-1, -1], [-3.0, -4.0], 1.0),
    candidates(1, 4, [2, 3], [0, 0], [-2.0, -1.0], 0.5),
    {"kind": "budget", "step": 1, "nfe_total": 4, "chain": 0, "mode": "accept", "rollover": 2, "drawn": 2,
     "quota": 2, "r_star": -3.0, "taken": 3, "reward": -1.0},
    candidates(2, 5, [4], [3], [-0.5], 0.25),
]
RECORD = {
    "config": START["config"], "versions": {}, "grid": START["grid"], "events": EVENTS, "nfe_budget": 5,
    "nfe_used": 5, "nfe_per_step": [2, 2, 1], "best_reward_by_nfe": [[2, -3.0], [4, -1.0], [5, -0.5]],
    "final_reward": -0.5, "heldout_reward": -2.0, "accuracy": None, "rewards": [-0.5], "heldout_rewards": [-2.0],
    "samples_2d": [[0.8, 0.8]], "details": None, "wall_time_s": 0.1, "model_time_s": 0.05, "reward_time_s": 0.01,
    "quota_per_step": [2, 2, 1], "rollover_per_step": [0, 0, 2], "returned_id": 4, "world": START["world"],
}
