"""What the benchmark sends and what it aims at: task names, the goal, a wine row, NSMC
reviews and the LLM prompt."""

from __future__ import annotations

PARTS = ("wine", "nsmc", "llm")
WINE, NSMC, LLM = "wine-quality", "nsmc-sentiment", "llm-sft"
ALIAS = "champion"
READY_TIMEOUT = 180.0  # seconds for a server to load its model and answer its readiness check
LOG_TAIL = 30
BATCHING = ("--max-batch", "8", "--max-wait-ms", "1")
NSMC_CONNECTIONS = (1, 4)
LLM_STREAMS = (1, 4)
NSMC_BATCH = 32  # texts per request
GOAL_RPS, GOAL_P99 = 3.0, 1 / 3  # ours/mlflow at the most connections: req/s at least, p99 at most
MLFLOW = "mlflow models serve"
OURS = "reprolab serve"
OURS_BATCHING = "reprolab serve, batch 8/1ms"  # BATCHING
GOAL = "at least 3x mlflow's req/s at 8 connections with p99 at most a third of mlflow's"

# One red wine of the UCI set, in the order of the model's inputs (FEATURES of the workload).
WINE_ROW: dict[str, float] = {
    "fixed acidity": 7.4,
    "volatile acidity": 0.7,
    "citric acid": 0.0,
    "residual sugar": 1.9,
    "chlorides": 0.076,
    "free sulfur dioxide": 11.0,
    "total sulfur dioxide": 34.0,
    "density": 0.9978,
    "pH": 3.51,
    "sulphates": 0.56,
    "alcohol": 9.4,
    "is_red": 1.0,
}

# Short movie reviews in the style of NSMC (a request takes NSMC_BATCH of them, in turn).
NSMC_TEXTS = (
    "정말 재미있게 봤어요. 배우들 연기가 최고입니다",
    "시간 아까운 영화. 스토리가 너무 뻔하다",
    "음악이 좋아서 끝까지 몰입해서 봤습니다",
    "기대했는데 실망이 큽니다",
    "가족이랑 보기 딱 좋은 따뜻한 영화",
    "연출이 엉망이고 대사도 어색해요",
    "두 번 봐도 또 보고 싶은 인생 영화",
    "중간에 졸았다... 지루함 그 자체",
    "마지막 장면에서 눈물이 났어요",
    "별 하나도 아깝다",
    "배경 영상미가 정말 아름답다",
    "원작을 망쳐 놓았네요",
    "생각보다 괜찮았어요. 추천합니다",
    "러닝타임이 너무 길고 산만하다",
    "아이들이 정말 좋아했어요",
    "돈 주고 보기에는 아까운 수준",
)

LLM_PROMPT = (
    "### Instruction:\nExplain in two sentences what a DVC pipeline stage is.\n\n### Response:\n"
)
