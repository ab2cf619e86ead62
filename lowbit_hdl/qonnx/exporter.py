def export(*a, **k): raise NotImplementedError
def to_model(*a, **k): raise NotImplementedError
