"""Seeded procedural arithmetic/algebra word problems with verified worked solutions.

Small reasoning models learn from the steps, so every step must be right. Each
problem is drawn from a template family, its worked solution is written as short
sentences that show the computation (``7 × 12 = 84``), and it is only returned
after two checks that do not reuse the step code path:

* the family's own check re-derives the answer from the drawn numbers another
  way (substitution into the equation, recounting totals), and
* every ``a op b = c`` chain printed in the steps is re-evaluated exactly, and the
  final step must end on the answer.

Draws that would need a non-integer or negative quantity are resampled a bounded
number of times. The text is honest synthetic data: documents carry
``synthetic=True``. :func:`split_problems` keeps held-out evaluation questions out
of training.
"""

from __future__ import annotations

import ast
import operator
import random
import re
from dataclasses import dataclass
from fractions import Fraction
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from infir.data.documents import HELDOUT_EVAL, TRAIN, VALIDATION, Document

SOURCE = "procedural"
DOMAIN = "math"
MAX_ATTEMPTS = 200  # resamples per problem before a template is declared broken
MAX_DUPLICATE_DRAWS = 10_000  # consecutive already-seen questions before giving up
MIN_STEPS, MAX_STEPS = 2, 6


@dataclass(frozen=True)
class WordProblem:
    """One word problem with its worked solution; the unit every consumer reads."""

    question: str
    steps: tuple[str, ...]
    answer: int
    kind: str

    @property
    def solution(self) -> str:
        """Steps then ``#### answer``: the GSM8K layout graders and SFT expect."""
        return "\n".join((*self.steps, f"#### {self.answer}"))

    def to_document(self, split: str, index: int) -> Document:
        """Wrap as a math ``Document`` flagged synthetic so mixing can weigh it."""
        return Document(
            id=f"{SOURCE}/{split}/{index}",
            text=f"{self.question}\n{self.solution}",
            source=SOURCE,
            domain=DOMAIN,
            metadata={"split": split, "synthetic": True, "kind": self.kind, "answer": self.answer},
        )

    def to_gsm8k(self) -> dict[str, str]:
        """Public GSM8K jsonl record, so GSM8K evaluation code runs unchanged."""
        return {"question": self.question, "answer": self.solution}


class Resample(Exception):
    """Raised by a template when its draw cannot give an all-integer, sensible problem."""


class ProblemGenerationError(RuntimeError):
    """A template kept failing verification; the message names it."""


@dataclass(frozen=True)
class Draft:
    """What a template writes: the problem text plus the numbers it drew, for its check."""

    question: str
    steps: tuple[str, ...]
    answer: int
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Template:
    """A problem family.

    ``build`` draws numbers and writes question and steps; ``check`` sees only the
    drawn numbers and the answer and must confirm the answer by a different route.
    """

    kind: str
    build: Callable[[random.Random], Draft]
    check: Callable[[Mapping[str, Any], int], bool]


# --------------------------------------------------------------------------- helpers

NAMES = (
    "Ava", "Ben", "Chloe", "Diego", "Elena", "Farah", "Gus", "Hana", "Ivan", "Jade",
    "Kofi", "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tariq",
    "Uma", "Victor", "Wen", "Yusuf", "Zoe",
)


def pick_names(rng: random.Random, k: int) -> list[str]:
    """Distinct names, so two people in one problem are never confused."""
    return rng.sample(NAMES, k)


def phrase(rng: random.Random, variants: Sequence[str], **fields: Any) -> str:
    """Fill one randomly chosen wording, so a family does not read as a single sentence."""
    return rng.choice(variants).format(**fields)


def plural(n: int, singular: str, many: str | None = None) -> str:
    """``1 hour`` / ``3 hours``."""
    return f"{n} {singular if n == 1 else (many or singular + 's')}"


def whole(value: Fraction | int) -> int:
    """Exact non-negative integer or :class:`Resample`: keeps every shown quantity an integer."""
    value = Fraction(value)
    if value < 0 or value.denominator != 1:
        raise Resample(f"{value} is not a non-negative integer")
    return int(value)


def normalise_question(question: str) -> str:
    """Case- and whitespace-insensitive key used to keep splits disjoint."""
    return " ".join(question.lower().split())


# ------------------------------------------------------------ step arithmetic check

# A chain of pure arithmetic expressions joined by "=", e.g. "2 × (12 + 5) = 34".
# Text such as "3x = 20 − 5 = 15" yields only the numeric part "20 − 5 = 15".
_EXPR = r"\$?[\d(][\d\s()+−×÷$]*"
_CHAIN = re.compile(rf"(?<![\w$]){_EXPR}(?:=\s*{_EXPR})+")
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _evaluate(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    raise ValueError(f"not plain arithmetic: {ast.dump(node)}")


def _chain_values(chain: str) -> list[Fraction]:
    values = []
    for part in chain.split("="):
        text = part.replace("$", "").replace("×", "*").replace("÷", "/").replace("−", "-").strip()
        values.append(_evaluate(ast.parse(text, mode="eval").body))
    return values


def arithmetic_is_consistent(problem: WordProblem) -> bool:
    """True when every computation printed in the steps is exact and the last one is the answer.

    Independent of how a template computed its numbers: it re-reads the text.
    """
    if not MIN_STEPS <= len(problem.steps) <= MAX_STEPS:
        return False
    final_result: Fraction | None = None
    for step in problem.steps:
        final_result = None
        for chain in _CHAIN.findall(step):
            try:
                values = _chain_values(chain)
            except (SyntaxError, ValueError, ZeroDivisionError):
                return False
            if any(value != values[0] for value in values):
                return False
            final_result = values[-1]
    return final_result is not None and final_result == problem.answer


# ------------------------------------------------------------------------ templates

GOODS = ("notebooks", "pens", "apples", "mugs", "comics", "candles", "sandwiches", "tickets", "plants", "scarves")


def _shopping_change(rng: random.Random) -> Draft:
    name = pick_names(rng, 1)[0]
    first, second = rng.sample(GOODS, 2)
    q1, q2, p1, p2 = rng.randint(2, 9), rng.randint(2, 9), rng.randint(2, 15), rng.randint(2, 15)
    cost1, cost2 = q1 * p1, q2 * p2
    total = cost1 + cost2
    paid = rng.choice([bill for bill in (50, 100, 200, 300) if bill > total][:2])
    change = whole(paid - total)
    fields = dict(name=name, a=first, b=second, q1=q1, q2=q2, p1=p1, p2=p2, paid=paid)
    question = phrase(rng, (
        "{name} buys {q1} {a} at ${p1} each and {q2} {b} at ${p2} each, paying with ${paid}. "
        "How much change does {name} get, in dollars?",
        "At the market, {a} cost ${p1} each and {b} cost ${p2} each. {name} picks up {q1} {a} and {q2} {b} "
        "and hands over ${paid}. How many dollars of change should {name} receive?",
        "{name} has ${paid} and spends some of it on {q1} {a} priced at ${p1} each and {q2} {b} priced at "
        "${p2} each. How many dollars does {name} have left?",
    ), **fields)
    steps = (
        f"The {first} cost {q1} × ${p1} = ${cost1}.",
        f"The {second} cost {q2} × ${p2} = ${cost2}.",
        f"Together that is ${cost1} + ${cost2} = ${total}.",
        f"The change from ${paid} is ${paid} − ${total} = ${change}.",
    )
    return Draft(question, steps, change, dict(paid=paid, q1=q1, p1=p1, q2=q2, p2=p2))


def _check_shopping_change(p: Mapping[str, Any], answer: int) -> bool:
    items = [p["p1"]] * p["q1"] + [p["p2"]] * p["q2"]  # recount item by item
    return answer >= 0 and answer + sum(items) == p["paid"]


MOVERS = (("cycles", 10, 24), ("drives", 40, 90), ("runs", 8, 14), ("sails", 12, 30))


def _travel_distance(rng: random.Random) -> Draft:
    name = pick_names(rng, 1)[0]
    verb, low, high = rng.choice(MOVERS)
    s1, s2, t1, t2 = rng.randint(low, high), rng.randint(low, high), rng.randint(1, 5), rng.randint(1, 5)
    d1, d2 = s1 * t1, s2 * t2
    total = d1 + d2
    fields = dict(name=name, verb=verb, s1=s1, s2=s2, h1=plural(t1, "hour"), h2=plural(t2, "hour"))
    question = phrase(rng, (
        "{name} {verb} at {s1} km/h for {h1}, then at {s2} km/h for {h2}. How many kilometres does {name} "
        "cover in total?",
        "For the first {h1} of a trip {name} {verb} at {s1} km/h; for the next {h2} the speed is {s2} km/h. "
        "What is the total distance in km?",
    ), **fields)
    steps = (
        f"At {s1} km/h for {fields['h1']}, {name} covers {s1} × {t1} = {d1} km.",
        f"At {s2} km/h for {fields['h2']}, {name} covers {s2} × {t2} = {d2} km.",
        f"The total distance is {d1} + {d2} = {total} km.",
    )
    return Draft(question, steps, total, dict(s1=s1, t1=t1, s2=s2, t2=t2))


def _check_travel_distance(p: Mapping[str, Any], answer: int) -> bool:
    # The first leg's speed must come back out of the total.
    return Fraction(answer - p["s2"] * p["t2"], p["t1"]) == p["s1"]


def _travel_time(rng: random.Random) -> Draft:
    name = pick_names(rng, 1)[0]
    verb, low, high = rng.choice(MOVERS)
    speed, rest = rng.randint(low, high), rng.randint(1, 3)
    distance = speed * rng.randint(2, 8)
    moving = whole(Fraction(distance, speed))
    total = moving + rest
    fields = dict(name=name, verb=verb, d=distance, s=speed, rest=plural(rest, "hour"))
    question = phrase(rng, (
        "Two towns are {d} km apart. {name} {verb} between them at a steady {s} km/h and also stops for "
        "{rest} on the way. How many hours does the whole trip take?",
        "{name} {verb} {d} km at {s} km/h and rests for {rest} along the way. How long is the trip, in hours?",
    ), **fields)
    steps = (
        f"Moving {distance} km at {speed} km/h takes {distance} ÷ {speed} = {moving} hours.",
        f"Adding {fields['rest']} of rest gives {moving} + {rest} = {total} hours.",
    )
    return Draft(question, steps, total, dict(distance=distance, speed=speed, rest=rest))


def _check_travel_time(p: Mapping[str, Any], answer: int) -> bool:
    return (answer - p["rest"]) * p["speed"] == p["distance"]


VARIABLES = ("x", "y", "n", "k")


def _linear_equation(rng: random.Random) -> Draft:
    name, var = pick_names(rng, 1)[0], rng.choice(VARIABLES)
    a, b, hidden = rng.randint(2, 12), rng.randint(1, 60), rng.randint(1, 20)
    minus = rng.random() < 0.5
    c = a * hidden - b if minus else a * hidden + b
    if c <= 0:
        raise Resample("right-hand side must be positive")
    equation = f"{a}{var} {'−' if minus else '+'} {b} = {c}"
    question = phrase(rng, (
        "Solve for {v}: {eq}.",
        "Find the value of {v} if {eq}.",
        "{name} writes the equation {eq} on the board. What value of {v} makes it true?",
    ), v=var, eq=equation, name=name)
    # Solve from (a, b, c) alone; `hidden` is never used past this point.
    isolated = c + b if minus else c - b
    value = whole(Fraction(isolated, a))
    undo = f"Add {b} to both sides: {a}{var} = {c} + {b}" if minus else \
        f"Subtract {b} from both sides: {a}{var} = {c} − {b}"
    steps = (
        f"{undo} = {isolated}.",
        f"Divide both sides by {a}: {var} = {isolated} ÷ {a} = {value}.",
    )
    return Draft(question, steps, value, dict(a=a, b=-b if minus else b, c=c))


def _check_linear_equation(p: Mapping[str, Any], answer: int) -> bool:
    return p["a"] * answer + p["b"] == p["c"]  # substitute back


ITEMS = ("jacket", "lamp", "backpack", "bicycle helmet", "board game", "desk chair")


def _discount_tax(rng: random.Random) -> Draft:
    name, item = pick_names(rng, 1)[0], rng.choice(ITEMS)
    price = 10 * rng.randint(2, 40)
    off, tax_rate = rng.choice((10, 15, 20, 25, 30, 40, 50)), rng.choice((5, 8, 10, 12, 20))
    discount = whole(Fraction(price * off, 100))
    sale = price - discount
    tax = whole(Fraction(sale * tax_rate, 100))
    final = sale + tax
    question = phrase(rng, (
        "A {item} costs ${p}. It is on sale for {off}% off, and then a {t}% sales tax is added to the sale "
        "price. What is the final price in dollars?",
        "{name} wants a ${p} {item}. The store takes {off}% off, then charges {t}% tax on the reduced price. "
        "How many dollars does {name} pay?",
    ), item=item, p=price, off=off, t=tax_rate, name=name)
    steps = (
        f"The discount is {off}% of ${price}: {price} × {off} ÷ 100 = ${discount}.",
        f"The sale price is ${price} − ${discount} = ${sale}.",
        f"The tax is {tax_rate}% of ${sale}: {sale} × {tax_rate} ÷ 100 = ${tax}.",
        f"The final price is ${sale} + ${tax} = ${final}.",
    )
    return Draft(question, steps, final, dict(price=price, off=off, tax=tax_rate))


def _check_discount_tax(p: Mapping[str, Any], answer: int) -> bool:
    # One multiplicative factor instead of four additive steps.
    return Fraction(p["price"] * (100 - p["off"]) * (100 + p["tax"]), 10_000) == answer


def _ages(rng: random.Random) -> Draft:
    first, second = pick_names(rng, 2)
    base, years = rng.randint(3, 40), rng.randint(2, 15)
    if rng.random() < 0.5:
        gap = rng.randint(1, 15)
        relation, params = f"{gap} years older than", dict(gap=gap)
        now = base + gap
        derive = f"{second} is {base} + {gap} = {now} years old now."
    else:
        times = rng.randint(2, 4)
        relation, params = f"{times} times as old as", dict(times=times)
        now = times * base
        derive = f"{second} is {times} × {base} = {now} years old now."
    later_first, later_second = base + years, now + years
    total = later_first + later_second
    question = phrase(rng, (
        "{a} is {base} years old. {b} is {rel} {a}. What will the sum of their ages be in {n} years?",
        "{b} is {rel} {a}, who is {base} today. In {n} years, how old will the two of them be altogether?",
    ), a=first, b=second, base=base, rel=relation, n=years)
    steps = (
        derive,
        f"In {years} years, {first} will be {base} + {years} = {later_first} and {second} will be "
        f"{now} + {years} = {later_second}.",
        f"Their combined age then will be {later_first} + {later_second} = {total}.",
    )
    return Draft(question, steps, total, dict(base=base, years=years, **params))


def _check_ages(p: Mapping[str, Any], answer: int) -> bool:
    second_now = p["base"] + p["gap"] if "gap" in p else p["base"] * p["times"]
    # Sum now, then both people age by the same number of years.
    return answer == (p["base"] + second_now) + 2 * p["years"]


THINGS = ("marbles", "stickers", "dollars", "trading cards", "stamps", "seashells")


def _ratio_share(rng: random.Random) -> Draft:
    first, second = pick_names(rng, 2)
    thing = rng.choice(THINGS)
    a, b = rng.sample(range(1, 9), 2)
    parts = a + b
    total = parts * rng.randint(2, 20)
    unit = whole(Fraction(total, parts))
    share_a, share_b = a * unit, b * unit
    steps = [
        f"The ratio {a}:{b} has {a} + {b} = {parts} parts.",
        f"Each part is {total} ÷ {parts} = {unit} {thing}.",
        f"{second} gets {b} × {unit} = {share_b} {thing}.",
    ]
    intro = phrase(rng, (
        "{a} and {b} share {total} {thing} in the ratio {ra}:{rb}.",
        "{total} {thing} are split between {a} and {b} in the ratio {ra}:{rb}.",
    ), a=first, b=second, total=total, thing=thing, ra=a, rb=b)
    asks_difference = rng.random() < 0.5
    if not asks_difference:
        question, answer = f"{intro} How many {thing} does {second} get?", share_b
    else:
        (big, big_share), (small, small_share) = sorted(
            ((first, share_a), (second, share_b)), key=lambda pair: -pair[1])
        steps += [
            f"{first} gets {a} × {unit} = {share_a} {thing}.",
            f"{big} gets {big_share} − {small_share} = {big_share - small_share} more {thing} than {small}.",
        ]
        question, answer = f"{intro} How many more {thing} does {big} get than {small}?", big_share - small_share
    return Draft(question, tuple(steps), answer, dict(total=total, a=a, b=b, difference=asks_difference))


def _check_ratio_share(p: Mapping[str, Any], answer: int) -> bool:
    weight = abs(p["a"] - p["b"]) if p["difference"] else p["b"]
    return Fraction(p["total"] * weight, p["a"] + p["b"]) == answer


TASKS = (  # verb, gerund, third person, object
    ("pack", "packing", "packs", "boxes"),
    ("bake", "baking", "bakes", "loaves of bread"),
    ("fold", "folding", "folds", "paper cranes"),
    ("label", "labelling", "labels", "jars"),
)


def _work_rate(rng: random.Random) -> Draft:
    first, second = pick_names(rng, 2)
    verb, gerund, third, things = rng.choice(TASKS)
    r1, r2, together_hours = rng.randint(2, 12), rng.randint(2, 12), rng.randint(2, 8)
    head_start = rng.choice((0, rng.randint(1, 3)))
    job = r1 * (head_start + together_hours) + r2 * together_hours
    rate = r1 + r2
    rates = f"{first} can {verb} {r1} {things} an hour and {second} can {verb} {r2} {things} an hour."
    if head_start == 0:
        hours = whole(Fraction(job, rate))
        question = phrase(rng, (
            "{rates} Working together, how many hours do they need to {verb} {job} {things}?",
            "{rates} If they team up on an order of {job} {things}, how many hours will it take?",
        ), rates=rates, verb=verb, job=job, things=things)
        steps = (
            f"Together they {verb} {r1} + {r2} = {rate} {things} per hour.",
            f"So {job} {things} take {job} ÷ {rate} = {hours} hours.",
        )
        answer = hours
    else:
        done = r1 * head_start
        left = job - done
        hours = whole(Fraction(left, rate))
        answer = head_start + hours
        question = (f"{rates} {first} starts {gerund} an order of {job} {things} alone, and after "
                    f"{plural(head_start, 'hour')} {second} joins in. How many hours does {first} work in total?")
        steps = (
            f"Alone for {plural(head_start, 'hour')}, {first} {third} {r1} × {head_start} = {done} {things}.",
            f"That leaves {job} − {done} = {left} {things}.",
            f"Together they {verb} {r1} + {r2} = {rate} {things} per hour.",
            f"The rest takes {left} ÷ {rate} = {hours} hours.",
            f"In total {first} works {head_start} + {hours} = {answer} hours.",
        )
    return Draft(question, steps, answer, dict(r1=r1, r2=r2, head_start=head_start, job=job))


def _check_work_rate(p: Mapping[str, Any], answer: int) -> bool:
    # What each worker makes over their own working time must add up to the job.
    return p["r1"] * answer + p["r2"] * (answer - p["head_start"]) == p["job"]


SHOPS = (("bakery", "muffins"), ("bookshop", "notebooks"), ("toy store", "yo-yos"), ("garden centre", "seed packets"))
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


def _inventory(rng: random.Random) -> Draft:
    shop, items = rng.choice(SHOPS)
    stock = start = rng.randint(30, 120)
    sold, delivered, sentences, steps = [], [], [], []
    days = DAYS[:rng.randint(2, 5)]
    for day in days:
        amount = rng.randint(5, 40)
        if rng.random() < 0.55:
            new = whole(stock - amount)
            sold.append(amount)
            sentences.append(phrase(rng, ("On {d} it sells {n}.", "{d} brings {n} sales."), d=day, n=amount))
            steps.append(f"After selling {amount} on {day}, the {shop} has {stock} − {amount} = {new} {items}.")
        else:
            new = stock + amount
            delivered.append(amount)
            sentences.append(phrase(rng, ("On {d} a delivery adds {n} more.", "On {d} it restocks {n}."),
                                    d=day, n=amount))
            steps.append(f"A delivery of {amount} on {day} brings it to {stock} + {amount} = {new} {items}.")
        stock = new
    question = (f"A {shop} starts the week with {start} {items}. {' '.join(sentences)} "
                f"How many {items} does it have at the end of {days[-1]}?")
    return Draft(question, tuple(steps), stock, dict(start=start, sold=sold, delivered=delivered))


def _check_inventory(p: Mapping[str, Any], answer: int) -> bool:
    return answer == p["start"] + sum(p["delivered"]) - sum(p["sold"])


PLOTS = ("garden", "patio", "playground", "vegetable bed", "swimming pool cover")


def _rectangle(rng: random.Random) -> Draft:
    name, plot = pick_names(rng, 1)[0], rng.choice(PLOTS)
    length, width = rng.randint(3, 30), rng.randint(2, 25)
    perimeter = 2 * (length + width)
    perimeter_step = f"The perimeter is 2 × ({length} + {width}) = {perimeter} m."
    if rng.random() < 0.5:
        price = rng.randint(2, 15)
        cost = perimeter * price
        question = phrase(rng, (
            "{name}'s rectangular {plot} is {l} m long and {w} m wide. Fencing costs ${c} per metre. "
            "How many dollars does it cost to fence the whole {plot}?",
            "A rectangular {plot} measures {l} m by {w} m. At ${c} per metre of edging, what does edging all "
            "the way around it cost, in dollars?",
        ), name=name, plot=plot, l=length, w=width, c=price)
        steps = (perimeter_step, f"Going all the way around costs {perimeter} × ${price} = ${cost}.")
        return Draft(question, steps, cost, dict(length=length, width=width, price=price))
    area = length * width
    found_width = whole(Fraction(area, length))
    question = phrase(rng, (
        "A rectangular {plot} has an area of {a} square metres and a length of {l} m. What is its perimeter "
        "in metres?",
        "{name} marks out a rectangular {plot} {l} m long with an area of {a} square metres. How many metres "
        "is it all the way around?",
    ), name=name, plot=plot, a=area, l=length)
    steps = (f"The width is {area} ÷ {length} = {found_width} m.", perimeter_step)
    return Draft(question, steps, perimeter, dict(length=length, area=area))


def _check_rectangle(p: Mapping[str, Any], answer: int) -> bool:
    if "price" in p:  # walk the four sides
        return answer == p["price"] * (p["length"] + p["width"] + p["length"] + p["width"])
    width = Fraction(answer, 2) - p["length"]
    return width > 0 and p["length"] * width == p["area"]


MEASURES = (  # noun, measure, measures, lowest, highest
    ("test", "score", "scores", 55, 100),
    ("basketball game", "points total", "points totals", 4, 35),
    ("bowling game", "score", "scores", 60, 200),
)


def _missing_average(rng: random.Random) -> Draft:
    name = pick_names(rng, 1)[0]
    noun, measure, measures, low, high = rng.choice(MEASURES)
    known = [rng.randint(low, high) for _ in range(rng.randint(2, 5))]
    count = len(known) + 1
    target = rng.randint(low, high)
    needed_total = target * count
    so_far = sum(known)
    needed = whole(needed_total - so_far)
    if not low <= needed <= high:
        raise Resample("target mean unreachable within the measure's range")
    listed = ", ".join(map(str, known[:-1])) + f" and {known[-1]}"
    question = phrase(rng, (
        "{name}'s {ms} in the first {k} {noun}s were {listed}. What {m} does {name} need in the next {noun} "
        "to average exactly {t}?",
        "After {k} {noun}s, {name} has {ms} of {listed}. To make the average over {c} {noun}s equal {t}, what "
        "must the next {m} be?",
    ), name=name, m=measure, ms=measures, k=len(known), noun=noun, listed=listed, t=target, c=count)
    steps = (
        f"An average of {target} over {count} {noun}s needs a total of {target} × {count} = {needed_total}.",
        f"The first {len(known)} add to {' + '.join(map(str, known))} = {so_far}.",
        f"So the next {noun} needs {needed_total} − {so_far} = {needed}.",
    )
    return Draft(question, steps, needed, dict(known=known, target=target))


def _check_missing_average(p: Mapping[str, Any], answer: int) -> bool:
    values = [*p["known"], answer]
    return Fraction(sum(values), len(values)) == p["target"]


@dataclass(frozen=True)
class _Mixture:
    low: str
    high: str
    group: str
    unit: str
    low_values: tuple[int, ...]
    high_values: tuple[int, ...]
    intro: str


MIXTURES = (
    _Mixture("chickens", "cows", "animals", "legs", (2,), (4,),
             "A farm keeps only chickens and cows: {h} animals with {t} legs in total."),
    _Mixture("bicycles", "tricycles", "cycles", "wheels", (2,), (3,),
             "A rental shop has {h} bicycles and tricycles with {t} wheels altogether."),
    _Mixture("child tickets", "adult tickets", "tickets", "dollars", (4, 5, 6, 7, 8), (10, 12, 14, 15),
             "A theatre sold {h} tickets and took in ${t}. Child tickets cost ${v1} and adult tickets cost ${v2}."),
    _Mixture("small boxes", "large boxes", "boxes", "kilograms", (2, 3, 5), (7, 9, 10, 12),
             "A van carries {h} boxes weighing {t} kg in total. Small boxes weigh {v1} kg and large boxes weigh "
             "{v2} kg."),
)


def _two_kind_system(rng: random.Random) -> Draft:
    mix = rng.choice(MIXTURES)
    v1, v2 = rng.choice(mix.low_values), rng.choice(mix.high_values)
    n_low, n_high = rng.randint(1, 25), rng.randint(1, 25)
    heads, total = n_low + n_high, n_low * v1 + n_high * v2
    # Solve from (heads, total) alone.
    base = heads * v1
    extra = total - base
    diff = v2 - v1
    high_count = whole(Fraction(extra, diff))
    steps = [
        f"If all {heads} {mix.group} were {mix.low}, there would be {heads} × {v1} = {base} {mix.unit}.",
        f"The actual total is {total}, so there are {total} − {base} = {extra} extra {mix.unit}.",
        f"Swapping one of the {mix.low} for one of the {mix.high} adds {v2} − {v1} = {diff} {mix.unit}, "
        f"so there are {extra} ÷ {diff} = {high_count} {mix.high}.",
    ]
    target, answer = mix.high, high_count
    if rng.random() < 0.5:
        answer = whole(heads - high_count)
        target = mix.low
        steps.append(f"That leaves {heads} − {high_count} = {answer} {mix.low}.")
    question = (mix.intro.format(h=heads, t=total, v1=v1, v2=v2)
                + f" How many of the {mix.group} are {target}?")
    return Draft(question, tuple(steps), answer,
                 dict(heads=heads, total=total, v1=v1, v2=v2, asks_low=target == mix.low))


def _check_two_kind_system(p: Mapping[str, Any], answer: int) -> bool:
    other = p["heads"] - answer
    low, high = (answer, other) if p["asks_low"] else (other, answer)
    return min(low, high) >= 0 and low * p["v1"] + high * p["v2"] == p["total"]


TEMPLATES: tuple[Template, ...] = (
    Template("shopping_change", _shopping_change, _check_shopping_change),
    Template("travel_distance", _travel_distance, _check_travel_distance),
    Template("travel_time", _travel_time, _check_travel_time),
    Template("linear_equation", _linear_equation, _check_linear_equation),
    Template("discount_tax", _discount_tax, _check_discount_tax),
    Template("ages", _ages, _check_ages),
    Template("ratio_share", _ratio_share, _check_ratio_share),
    Template("work_rate", _work_rate, _check_work_rate),
    Template("inventory", _inventory, _check_inventory),
    Template("rectangle", _rectangle, _check_rectangle),
    Template("missing_average", _missing_average, _check_missing_average),
    Template("two_kind_system", _two_kind_system, _check_two_kind_system),
)
KINDS: tuple[str, ...] = tuple(template.kind for template in TEMPLATES)


# ----------------------------------------------------------------------- generation

def draw_verified(template: Template, rng: random.Random) -> WordProblem:
    """Draw from ``template`` until a problem passes both checks; raise naming it otherwise.

    Bounded so a broken template fails loudly instead of looping or leaking bad data.
    """
    for _ in range(MAX_ATTEMPTS):
        try:
            draft = template.build(rng)
        except Resample:
            continue
        if type(draft.answer) is not int:
            continue
        problem = WordProblem(draft.question, tuple(draft.steps), draft.answer, template.kind)
        if template.check(draft.params, problem.answer) and arithmetic_is_consistent(problem):
            return problem
    raise ProblemGenerationError(
        f"template {template.kind!r} produced no verified integer problem in {MAX_ATTEMPTS} attempts")


def _draw_unique(rng: random.Random, n: int, taken: set[str]) -> list[WordProblem]:
    """``n`` problems whose normalised questions are not in ``taken`` (which is updated)."""
    problems: list[WordProblem] = []
    misses = 0
    while len(problems) < n:
        problem = draw_verified(rng.choice(TEMPLATES), rng)
        key = normalise_question(problem.question)
        if key in taken:
            misses += 1
            if misses > MAX_DUPLICATE_DRAWS:
                raise ProblemGenerationError(f"could not find {n} distinct questions; problem space exhausted")
            continue
        misses = 0
        taken.add(key)
        problems.append(problem)
    return problems


def generate_problems(seed: int, n: int) -> list[WordProblem]:
    """``n`` distinct verified problems, identical for the same seed (prefix-stable in ``n``).

    For anything that is evaluated, use :func:`split_problems` instead: it keeps
    held-out questions out of the training split.
    """
    return _draw_unique(random.Random(seed), n, set())


def split_problems(seed: int, n_train: int, n_validation: int, n_heldout: int) -> dict[str, list[WordProblem]]:
    """Train/validation/held-out splits from distinct seed streams with no shared question.

    Held-out is drawn first, so it does not change when the other sizes change, and
    later splits drop and replace any question already taken by an earlier one.
    """
    taken: set[str] = set()
    sizes = ((HELDOUT_EVAL, n_heldout), (VALIDATION, n_validation), (TRAIN, n_train))
    drawn = {split: _draw_unique(random.Random(f"{SOURCE}:{seed}:{split}"), size, taken) for split, size in sizes}
    return {split: drawn[split] for split in (TRAIN, VALIDATION, HELDOUT_EVAL)}


class ProceduralSource:
    """Procedural word problems as math documents (synthetic, labelled so), split by ``split_problems``."""

    name = SOURCE
    domain = DOMAIN

    def __init__(self, n_train: int = 4000, n_validation: int = 200, n_heldout: int = 500, seed: int = 0) -> None:
        self.counts = {TRAIN: n_train, VALIDATION: n_validation, HELDOUT_EVAL: n_heldout}
        self.seed = seed

    def fingerprint(self) -> str:
        return f"procedural-v1-{self.seed}-{self.counts[TRAIN]}-{self.counts[VALIDATION]}-{self.counts[HELDOUT_EVAL]}"

    def documents(self) -> Iterator[Document]:
        splits = split_problems(self.seed, self.counts[TRAIN], self.counts[VALIDATION], self.counts[HELDOUT_EVAL])
        for split, problems in splits.items():
            for index, problem in enumerate(problems):
                yield problem.to_document(split, index)
