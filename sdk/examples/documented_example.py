from ai_ide import AIIDE

client = AIIDE(api_key='your-api-key')

# Refactoring suggestion
result = client.ai.refactor({
    'model_id': 'tiny-qwen',
    'code': 'fn old_func() { println!("hello"); }',
    'operation': 'extract_variable'
})

print(result['refactored_code'])
