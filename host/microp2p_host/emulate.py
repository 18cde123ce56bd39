def add_args(p):
    pass
def run(args):
    return 0
