use ai_ide_sdk::AIIDE;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = AIIDE::new("your-api-key")?;

    // Model management
    let models = client.ai.models().list().await?;
    println!("Available models: {:?}", models);

    // Inference
    let completion = client.ai.inference()
        .completion("tiny-qwen", "fn main() {", 12)
        .await?;

    println!("Completion: {}", completion.text);

    Ok(())
}
