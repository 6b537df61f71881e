"""MetaCURE (Zhang et al., ICML 2021): off-policy meta-RL whose explorer is rewarded for transitions that the
current task belief predicts worse than a task-aware oracle (empowerment-driven exploration), and PEARL and
ablations beside it. Read in this order: ``networks`` (encoders, policies, critics, predictors), ``losses``
(SAC, the intrinsic reward, the predictors), ``rollout`` (explore then exploit), ``buffers``, ``train``
(init / train_step / evaluate), ``goals`` (the training / validation / test task sets), ``rl2`` and ``rl2_train``
(the RL² baseline, Duan et al. 2016: a GRU policy over the whole trial trained by PPO), ``experiment`` (variants,
the CLI's runs); README.md derives r_int's link to the information gain."""
